#include "support/tls_certs.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace akv::test {

namespace {

int& counter() {
    static int n = 0;
    return n;
}

void run(const std::string& cmd) {
    ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

} // namespace

tls_certs::tls_certs() {
    dir_ = (std::filesystem::temp_directory_path() /
            ("akv-tls-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++)))
               .string();
    std::filesystem::create_directories(dir_);
    const std::string& d = dir_;
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

tls_certs::~tls_certs() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
}

std::string tls_certs::operator()(const std::string& file) const {
    return (std::filesystem::path(dir_) / file).string();
}

} // namespace akv::test
