// A FIFO ring that keeps its storage: pushing and popping in the steady state never allocates.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace akv::detail {

template <class T> class ring {
public:
    explicit ring(std::size_t capacity = 64)
        : storage_(round_up(capacity)) {}

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T& operator[](std::size_t i) noexcept { return storage_[(head_ + i) & mask()]; }
    const T& operator[](std::size_t i) const noexcept { return storage_[(head_ + i) & mask()]; }
    T& front() noexcept { return (*this)[0]; }

    void push_back(T v) {
        if (size_ == storage_.size()) grow();
        storage_[(head_ + size_) & mask()] = std::move(v);
        ++size_;
    }
    void push_front(T v) {
        if (size_ == storage_.size()) grow();
        head_ = (head_ + storage_.size() - 1) & mask();
        storage_[head_] = std::move(v);
        ++size_;
    }
    void pop_front() noexcept {
        head_ = (head_ + 1) & mask();
        --size_;
    }
    void clear() noexcept { head_ = size_ = 0; }

private:
    static std::size_t round_up(std::size_t n) {
        std::size_t c = 1;
        while (c < n)
            c <<= 1;
        return c;
    }
    std::size_t mask() const noexcept { return storage_.size() - 1; }
    void grow() {
        std::vector<T> bigger(storage_.size() * 2);
        for (std::size_t i = 0; i < size_; ++i)
            bigger[i] = std::move((*this)[i]);
        storage_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<T> storage_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace akv::detail
