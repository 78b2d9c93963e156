#include <akv/script.hpp>

#include <openssl/evp.h>

namespace akv {

script::script(std::string_view source)
    : source_(source) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(source_.data(), source_.size(), digest, &length, EVP_sha1(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    sha1_.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        sha1_ += hex[digest[i] >> 4];
        sha1_ += hex[digest[i] & 15];
    }
}

} // namespace akv
