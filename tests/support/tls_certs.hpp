// Certificates made at test time with openssl: a CA, a server certificate for
// localhost/127.0.0.1 signed by it, a client certificate, and a second CA that signed nothing
// we use ("other.crt"). Files by name: certs("ca.crt"), certs("server.key"), ...
#pragma once

#include <string>

namespace akv::test {

class tls_certs {
public:
    tls_certs();
    ~tls_certs();
    tls_certs(const tls_certs&) = delete;
    tls_certs& operator=(const tls_certs&) = delete;

    std::string operator()(const std::string& file) const;

private:
    std::string dir_;
};

} // namespace akv::test
