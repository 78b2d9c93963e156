// The redis-collections family (github.com/honzajavorek/redis-collections) on akv::client, each
// container on its natural Redis type so any other client reads it:
//
//   dict<K, V> (= typed_map)       hash          typed_map.hpp
//   defaultdict<K, V>              hash          defaultdict.hpp
//   counter<T>                     hash          counter.hpp
//   list<T>                        list          list.hpp
//   deque<T> (bounded)             list          deque.hpp
//   set<T>                         set           set.hpp
//   lru_dict<K, V>                 hash + zset   lru_dict.hpp
//   sorted_set_counter<T>          zset          sorted_set_counter.hpp
//   syncable_dict, _list, _deque, _set, _counter, _sorted_set_counter   syncable.hpp
//
// Values are encoded by akv/kv/codec.hpp; names get their prefix from akv/kv/key_schema.hpp.
#pragma once

#include <akv/kv/codec.hpp>
#include <akv/kv/counter.hpp>
#include <akv/kv/defaultdict.hpp>
#include <akv/kv/deque.hpp>
#include <akv/kv/key_schema.hpp>
#include <akv/kv/list.hpp>
#include <akv/kv/lru_dict.hpp>
#include <akv/kv/set.hpp>
#include <akv/kv/sorted_set_counter.hpp>
#include <akv/kv/syncable.hpp>
#include <akv/kv/typed_map.hpp>
