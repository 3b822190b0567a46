#include "amqp/event_encoding.hpp"

#include <proton/delivery.h>
#include <proton/link.h>

#include <array>
#include <optional>
#include <utility>
#include <vector>

namespace twinhub::amqp {
namespace {

// AMQP 1.0 type codes (part 1, 1.6) and section descriptors (part 3, 3.2).
constexpr std::uint8_t described = 0x00, smallulong = 0x53, null = 0x40, vbin8 = 0xa0, vbin32 = 0xb0, str8 = 0xa1,
                       str32 = 0xb1, sym8 = 0xa3, sym32 = 0xb3, long_code = 0x81, timestamp = 0x83, list32 = 0xd0,
                       map32 = 0xd1;
constexpr std::uint8_t message_annotations = 0x72, properties = 0x73, application_properties = 0x74, data = 0x75;

struct writer {
    std::string& o;

    void u8(std::uint8_t v) { o.push_back(static_cast<char>(v)); }
    void be32(std::uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) u8(static_cast<std::uint8_t>(v >> s));
    }
    void be64(std::uint64_t v) {
        for (int s = 56; s >= 0; s -= 8) u8(static_cast<std::uint8_t>(v >> s));
    }
    void variable(std::uint8_t small, std::uint8_t large, std::string_view v) {
        if (v.size() < 256) {
            u8(small);
            u8(static_cast<std::uint8_t>(v.size()));
        } else {
            u8(large);
            be32(static_cast<std::uint32_t>(v.size()));
        }
        o.append(v);
    }
    void sym(std::string_view v) { variable(sym8, sym32, v); }
    void str(std::string_view v) { variable(str8, str32, v); }
    void bin(std::string_view v) { variable(vbin8, vbin32, v); }
    void i64(std::int64_t v) {
        u8(long_code);
        be64(static_cast<std::uint64_t>(v));
    }
    void ts(std::int64_t ms) {
        u8(timestamp);
        be64(static_cast<std::uint64_t>(ms));
    }
    void section(std::uint8_t code) {
        u8(described);
        u8(smallulong);
        u8(code);
    }
    // A list32 or map32: the size and count are patched in by end().
    std::size_t begin(std::uint8_t code) {
        u8(code);
        const std::size_t at = o.size();
        be32(0);
        be32(0);
        return at;
    }
    void end(std::size_t at, std::uint32_t count) {
        const auto size = static_cast<std::uint32_t>(o.size() - at - 4);
        for (int i = 0; i < 4; ++i) {
            o[at + static_cast<std::size_t>(i)] = static_cast<char>(size >> (24 - 8 * i));
            o[at + 4 + static_cast<std::size_t>(i)] = static_cast<char>(count >> (24 - 8 * i));
        }
    }
};

// Sets key -> value, the last value winning (as a map's put does).
void put(std::vector<std::pair<std::string_view, std::string_view>>& kv, std::string_view k, std::string_view v) {
    for (auto& p : kv)
        if (p.first == k) {
            p.second = v;
            return;
        }
    kv.emplace_back(k, v);
}

}  // namespace

void encode_event(const store::event_record& e, std::string& out) {
    writer w{out};
    // The properties section's fields that event_message sets (part 3, 3.2.4): message-id (0),
    // user-id (1, binary), to (2), correlation-id (5), content-type (6, symbol), content-encoding (7, symbol).
    std::array<std::optional<std::string_view>, 8> props;
    std::vector<std::pair<std::string_view, std::string_view>> annotations;
    bool auth_method = false;
    for (auto& [k, v] : e.system_properties) {
        if (k == "message-id") props[0] = v;
        else if (k == "correlation-id") props[5] = v;
        else if (k == "user-id") props[1] = v;
        else if (k == "to") props[2] = v;
        else if (k == "content-type") props[6] = v;
        else if (k == "content-encoding") props[7] = v;
        else if (k == "absolute-expiry-time") continue;
        else {
            auth_method = auth_method || k == "iothub-connection-auth-method";
            put(annotations, k, v);
        }
    }
    if (!auth_method)
        put(annotations, "iothub-connection-auth-method",
            R"({"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null})");

    const std::int64_t enqueued_ms = e.enqueued_time_ns / 1'000'000;
    const std::string offset = std::to_string(e.sequence_number);
    w.section(message_annotations);
    std::uint32_t n = 0;
    auto at = w.begin(map32);
    // event_message puts the x-opt-* keys and iothub-enqueuedtime first and the system properties
    // after them, so a system property of the same name replaces the typed value: write each typed
    // value only when no system property has its name.
    auto overridden = [&](std::string_view k) {
        for (auto& p : annotations)
            if (p.first == k) return true;
        return false;
    };
    if (!overridden("x-opt-sequence-number")) {
        w.sym("x-opt-sequence-number");
        w.i64(static_cast<std::int64_t>(e.sequence_number));
        n += 2;
    }
    if (!overridden("x-opt-offset")) {
        w.sym("x-opt-offset");
        w.str(offset);
        n += 2;
    }
    if (!overridden("x-opt-enqueued-time")) {
        w.sym("x-opt-enqueued-time");
        w.ts(enqueued_ms);
        n += 2;
    }
    if (!overridden("iothub-enqueuedtime")) {
        w.sym("iothub-enqueuedtime");
        w.ts(enqueued_ms);
        n += 2;
    }
    for (auto& [k, v] : annotations) {
        w.sym(k);
        w.str(v);
        n += 2;
    }
    w.end(at, n);

    std::size_t fields = 0;
    for (std::size_t i = 0; i < props.size(); ++i)
        if (props[i]) fields = i + 1;
    if (fields) {
        w.section(properties);
        at = w.begin(list32);
        for (std::size_t i = 0; i < fields; ++i) {
            if (!props[i]) w.u8(null);
            else if (i == 1) w.bin(*props[i]);
            else if (i == 6 || i == 7) w.sym(*props[i]);
            else w.str(*props[i]);
        }
        w.end(at, static_cast<std::uint32_t>(fields));
    }

    if (!e.application_properties.empty()) {
        std::vector<std::pair<std::string_view, std::string_view>> app;
        for (auto& [k, v] : e.application_properties) put(app, k, v);
        w.section(application_properties);
        at = w.begin(map32);
        for (auto& [k, v] : app) {
            w.str(k);
            w.str(v);
        }
        w.end(at, static_cast<std::uint32_t>(app.size() * 2));
    }

    w.section(data);
    w.bin(e.body);
}

namespace {
// proton::sender keeps its pn_link_t protected.
struct raw_sender : proton::sender {
    static pn_link_t* of(const proton::sender& s) { return static_cast<const raw_sender&>(s).pn_object(); }
};
}  // namespace

void send_encoded(proton::sender& s, std::string_view bytes, std::uint64_t& tag) {
    pn_link_t* l = raw_sender::of(s);
    const std::uint64_t t = ++tag | (std::uint64_t{1} << 63);
    pn_delivery_t* d = pn_delivery(l, pn_dtag(reinterpret_cast<const char*>(&t), sizeof t));
    pn_link_send(l, bytes.data(), bytes.size());
    pn_link_advance(l);
    if (pn_link_snd_settle_mode(l) == PN_SND_SETTLED) pn_delivery_settle(d);
}

}  // namespace twinhub::amqp
