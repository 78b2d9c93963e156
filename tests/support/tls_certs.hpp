// Certificates made at test time with openssl: a CA, a server certificate for
// localhost/127.0.0.1 signed by it, a client certificate, and a second CA that signed nothing
// we use ("other.crt"). Files by name: certs("ca.crt"), certs("server.key"), ...
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace akv::test {

class tls_certs {
public:
    tls_certs() {
        dir_ = std::filesystem::temp_directory_path() /
               ("akv-tls-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::create_directories(dir_);
        const std::string d = dir_.string();
        run("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + d + "/ca.key -out " + d +
            "/ca.crt -days 1 -subj /CN=akv-test-ca");
        run("openssl req -x509 -newkey rsa:2048 -nodes -keyout " + d + "/other.key -out " + d +
            "/other.crt -days 1 -subj /CN=some-other-ca");
        for (const char* who : {"server", "client"}) {
            const std::string w = d + "/" + who;
            run("openssl req -newkey rsa:2048 -nodes -keyout " + w + ".key -out " + w +
                ".csr -subj /CN=localhost");
            std::ofstream(w + ".ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
            run("openssl x509 -req -in " + w + ".csr -CA " + d + "/ca.crt -CAkey " + d +
                "/ca.key -CAcreateserial -out " + w + ".crt -days 1 -extfile " + w + ".ext");
        }
    }
    ~tls_certs() {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    tls_certs(const tls_certs&) = delete;
    tls_certs& operator=(const tls_certs&) = delete;

    std::string operator()(const std::string& file) const { return (dir_ / file).string(); }

private:
    static int& counter() {
        static int n = 0;
        return n;
    }
    static void run(const std::string& cmd) {
        ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
    }
    std::filesystem::path dir_;
};

} // namespace akv::test
