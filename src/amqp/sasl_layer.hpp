// twinhub's own SASL server layer in front of Proton (issue 14 item 1). Proton's built-in SASL
// offers only ANONYMOUS, but the C and .NET SDKs offer MSSBCBS ("claims-based security follows on
// $cbs"), and Event Hubs clients ANONYMOUS. This layer answers a SASL protocol header
// ("AMQP\x03\x01\x00\x00") itself: it sends sasl-mechanisms [MSSBCBS, ANONYMOUS], takes the
// client's sasl-init, answers sasl-outcome ok, and hands Proton the stream from the client's
// following AMQP header on, as if the client had sent no SASL layer (Node's SDKs send none:
// then every byte passes through untouched). Authentication is not decided here: it is CBS
// put-token on $cbs, or for PLAIN (what `az iot hub monitor-events` sends: username
// `{policy}@sas.root.{hub}`, password a SAS token) the password, which the connection applies as
// if it had been put on $cbs for the token's own sr.
// Pure (no I/O); network input reaches it (fuzzed through amqp_text_fuzz's neighbours, and tested).
// Thread safety: one connection's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace twinhub::amqp {

class sasl_layer {
public:
    // Consumes client bytes: appends what Proton should read to `to_proton` and what must be sent
    // to the client (before any Proton output) to `to_client`. After a malformed SASL exchange
    // failed() is true and nothing more is passed on: close the connection.
    void feed(const char* in, std::size_t n, std::string& to_proton, std::string& to_client);
    bool failed() const noexcept { return state_ == state::failed; }
    // The mechanism the client chose ("" when it sent no SASL layer).
    const std::string& mechanism() const noexcept { return mechanism_; }
    // PLAIN's authcid (empty otherwise); the password goes only to the validator.
    const std::string& plain_user() const noexcept { return plain_user_; }

    // Decides a PLAIN exchange (user, password): true answers sasl-outcome ok, false sasl-outcome
    // auth (then failed()). Without one, PLAIN is refused.
    void set_plain_validator(std::function<bool(const std::string&, std::string&)> v) { validate_plain_ = std::move(v); }

    static constexpr std::size_t max_init_frame = 64 * 1024;

private:
    enum class state { header, init_head, init_body, amqp_header, passthrough, failed };
    state state_ = state::header;
    std::string buf_;
    std::size_t need_ = 8;
    std::string mechanism_;
    std::string plain_user_;
    std::string plain_password_;
    std::function<bool(const std::string&, std::string&)> validate_plain_;
    void on_init_frame();
};

}  // namespace twinhub::amqp
