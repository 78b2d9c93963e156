// akv::result<T>: one reply, either a value or the error that took its place.
//
// A Redis error reply is a value, not a failure of the whole request: a pipeline of ten commands
// where one fails returns the other nine. value() throws for the one that failed.
#pragma once

#include <akv/error.hpp>

#include <string>
#include <utility>
#include <variant>

namespace akv {

struct error_info {
    boost::system::error_code code; // error::server_error, type_mismatch, unexpected_null, ...
    std::string message;            // the server's text ("WRONGTYPE ...") or what did not match

    friend bool operator==(const error_info&, const error_info&) = default;
};

template <class T> class result {
public:
    result() = default;
    result(T v)
        : state_(std::in_place_index<0>, std::move(v)) {}
    result(error_info e)
        : state_(std::in_place_index<1>, std::move(e)) {}

    bool has_value() const noexcept { return state_.index() == 0; }
    bool has_error() const noexcept { return state_.index() == 1; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & {
        check();
        return std::get<0>(state_);
    }
    const T& value() const& {
        check();
        return std::get<0>(state_);
    }
    T&& value() && {
        check();
        return std::get<0>(std::move(state_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const error_info& error() const { return std::get<1>(state_); }

    // Reuses the held value's storage when it is a value already (steady-state exec() into the
    // same response does not allocate).
    T& emplace_value() {
        if (state_.index() != 0) state_.template emplace<0>();
        return std::get<0>(state_);
    }
    void set_error(error_info e) { state_.template emplace<1>(std::move(e)); }

private:
    void check() const {
        if (state_.index() == 1) {
            const error_info& e = std::get<1>(state_);
            throw boost::system::system_error(e.code, e.message);
        }
    }

    std::variant<T, error_info> state_;
};

} // namespace akv
