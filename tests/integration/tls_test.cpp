// rediss://: a CA made at test time with openssl, verification on by default, client certs.
#include "support/harness.hpp"
#include "support/tls_certs.hpp"

#include <akv/config.hpp>
#include <akv/connection.hpp>
#include <akv/testing/embedded_server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>

using namespace akv::test;
namespace asio = boost::asio;

namespace {

using pki = akv::test::tls_certs;

std::uint16_t free_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
}

struct tls_server {
    tls_server(const pki& certs, bool require_client_cert)
        : port(free_port())
        , server(akv::testing::embedded_server_options{
              .extra_args = {"--tls-port", std::to_string(port), "--tls-cert-file",
                             certs("server.crt"), "--tls-key-file", certs("server.key"),
                             "--tls-ca-cert-file", certs("ca.crt"), "--tls-auth-clients",
                             require_client_cert ? "yes" : "no"}}) {}

    akv::config config(const pki& certs) const {
        auto cfg = akv::config::from_url("rediss://127.0.0.1:" + std::to_string(port));
        cfg.tls.ca_file = certs("ca.crt");
        cfg.reconnect_wait_min = cfg.reconnect_wait_max = std::chrono::milliseconds(0);
        return cfg;
    }

    std::uint16_t port;
    akv::testing::embedded_server server;
};

void expect_ping(asio::io_context& io, akv::config cfg) {
    running_connection rc(io, cfg);
    run_task(io, [&]() -> asio::awaitable<void> {
        akv::request req;
        req.push("PING");
        akv::response<std::string> resp;
        auto [ec, n] = co_await rc.conn.exec(req, resp, asio::as_tuple(asio::use_awaitable));
        EXPECT_FALSE(ec) << ec.message() << " | " << rc.conn.last_error_message();
        if (!ec) EXPECT_EQ(std::get<0>(resp).value(), "PONG");
    }());
}

} // namespace

TEST(Tls, VerifiedConnectionToATlsServer) {
    pki certs;
    tls_server s(certs, false);
    asio::io_context io;
    expect_ping(io, s.config(certs));
}

TEST(Tls, ServerCertificateFromAnUnknownCaIsRefusedClearly) {
    pki certs;
    tls_server s(certs, false);
    asio::io_context io;
    auto cfg = s.config(certs);
    cfg.tls.ca_file = certs("other.crt");
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    const std::string what = failure.what();
    EXPECT_NE(what.find("TLS handshake with 127.0.0.1"), std::string::npos) << what;
    EXPECT_NE(what.find("certificate verify failed"), std::string::npos) << what;
}

TEST(Tls, WrongHostNameIsRefused) {
    pki certs;
    tls_server s(certs, false);
    asio::io_context io;
    auto cfg = s.config(certs);
    cfg.tls.server_name = "not-the-server.example";
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    EXPECT_NE(std::string(failure.what()).find("TLS handshake"), std::string::npos)
        << failure.what();
}

TEST(Tls, VerificationCanBeTurnedOffAndSaysSoLoudly) {
    pki certs;
    tls_server s(certs, false);
    asio::io_context io;
    auto cfg = s.config(certs);
    cfg.tls.ca_file = certs("other.crt");
    cfg.tls.verify_peer = false;
    std::string detail;
    running_connection rc(io, cfg);
    rc.conn.set_event_handler([&](const akv::connection_event& e) {
        if (e.what == akv::connection_event::kind::connected) detail = e.detail;
    });
    ASSERT_TRUE(run_until(
        io, [&] { return rc.conn.is_connected(); }, 10s));
    EXPECT_NE(detail.find("verification is OFF"), std::string::npos) << detail;
}

TEST(Tls, ClientCertificateWhenTheServerRequiresOne) {
    pki certs;
    tls_server s(certs, true);
    asio::io_context io;
    auto cfg = s.config(certs);
    cfg.tls.cert_file = certs("client.crt");
    cfg.tls.key_file = certs("client.key");
    expect_ping(io, cfg);

    akv::connection without(io.get_executor(), s.config(certs));
    const auto failure = run_failure(io, without);
    EXPECT_TRUE(failure.code()) << "a server requiring client certificates let us in without";
}

TEST(Tls, MissingCaFileIsNamed) {
    pki certs;
    tls_server s(certs, false);
    asio::io_context io;
    auto cfg = s.config(certs);
    cfg.tls.ca_file = "/no/such/ca.pem";
    akv::connection conn(io.get_executor(), cfg);
    const auto failure = run_failure(io, conn);
    EXPECT_EQ(failure.code(), akv::error::invalid_config);
    EXPECT_NE(std::string(failure.what()).find("ca_file \"/no/such/ca.pem\""), std::string::npos)
        << failure.what();
}
