#include "store/store_codec.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <type_traits>

namespace twinhub::store {

std::string session_doc(const session_record& s) {
    boost::json::array subs;
    for (auto& [filter, qos] : s.subscriptions) subs.push_back(boost::json::array{boost::json::string(filter), qos});
    return boost::json::serialize(boost::json::object{{"subscriptions", std::move(subs)}});
}

// Event properties: for each of the two lists, a 4-byte little-endian count, then for each
// property its key and value, each as a 4-byte little-endian length and the bytes. Binary, because
// property values are whatever bytes the device sent.
static void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string encode_lists(std::initializer_list<const property_list*> lists) {
    std::string out;
    for (auto* list : lists) {
        put_u32(out, static_cast<std::uint32_t>(list->size()));
        for (auto& [k, v] : *list) {
            put_u32(out, static_cast<std::uint32_t>(k.size()));
            out += k;
            put_u32(out, static_cast<std::uint32_t>(v.size()));
            out += v;
        }
    }
    return out;
}

std::string event_props(const event_record& e) { return encode_lists({&e.system_properties, &e.application_properties}); }

static bool get_u32(std::string_view& in, std::uint32_t& v) {
    if (in.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(4);
    return true;
}

static bool get_str(std::string_view& in, std::string& s) {
    std::uint32_t n;
    if (!get_u32(in, n) || in.size() < n) return false;
    s.assign(in.substr(0, n));
    in.remove_prefix(n);
    return true;
}

bool parse_lists(std::string_view in, std::initializer_list<property_list*> lists) {
    for (auto* list : lists) {
        std::uint32_t n;
        if (!get_u32(in, n)) return false;
        for (std::uint32_t i = 0; i < n; ++i) {
            std::string k, v;
            if (!get_str(in, k) || !get_str(in, v)) return false;
            list->emplace_back(std::move(k), std::move(v));
        }
    }
    return in.empty();
}

bool parse_event_props(std::string_view in, event_record& e) {
    return parse_lists(in, {&e.system_properties, &e.application_properties});
}

// C2D message properties: the system properties as a list of (short name, value), then the
// application properties, in the binary list encoding above.
std::string c2d_props(const c2d_message& m) {
    property_list sys{{"mid", m.message_id}, {"cid", m.correlation_id}, {"uid", m.user_id},
                      {"ct", m.content_type}, {"ce", m.content_encoding}};
    return encode_lists({&sys, &m.application_properties});
}

bool parse_c2d_props(std::string_view in, c2d_message& m) {
    property_list sys;
    if (!parse_lists(in, {&sys, &m.application_properties})) return false;
    for (auto& [k, v] : sys) {
        if (k == "mid") m.message_id = std::move(v);
        else if (k == "cid") m.correlation_id = std::move(v);
        else if (k == "uid") m.user_id = std::move(v);
        else if (k == "ct") m.content_type = std::move(v);
        else if (k == "ce") m.content_encoding = std::move(v);
    }
    return true;
}

std::string feedback_doc(const feedback_record& f) {
    return boost::json::serialize(boost::json::object{{"originalMessageId", f.original_message_id},
                                                      {"description", f.description},
                                                      {"deviceGenerationId", f.device_generation_id},
                                                      {"deviceId", f.device_id},
                                                      {"moduleId", f.module_id},
                                                      {"enqueuedNs", f.enqueued_time_ns},
                                                      {"statusCode", f.status_code}});
}

result<boost::json::value> parse_doc(std::string_view text, std::string_view what) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec) return error{errc::corrupt_data, "Stored " + std::string(what) + " is not valid JSON: " + ec.message() + "."};
    return v;
}

result<session_record> parse_session(std::string_view client_id, std::string_view text) {
    auto v = parse_doc(text, "session '" + std::string(client_id) + "'");
    if (!v) return v.error();
    session_record s;
    s.client_id = std::string(client_id);
    auto bad = [&] { return error{errc::corrupt_data, "Stored session '" + s.client_id + "' is malformed."}; };
    auto* o = v->if_object();
    if (!o) return bad();
    auto* subs = o->if_contains("subscriptions");
    if (!subs || !subs->is_array()) return bad();
    for (auto& e : subs->get_array()) {
        auto* pair = e.if_array();
        if (!pair || pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_int64()) return bad();
        s.subscriptions.emplace_back(std::string((*pair)[0].get_string()),
                                     static_cast<std::uint8_t>((*pair)[1].get_int64()));
    }
    return s;
}

std::string device_of_client(const std::string& client_id) { return client_id.substr(0, client_id.find('/')); }

result<void> parse_feedback(std::string_view text, feedback_record& f) {
    auto v = parse_doc(text, "feedback record " + std::to_string(f.sequence_number));
    if (!v) return v.error();
    auto* o = v->if_object();
    auto str = [&](std::string_view k) -> std::string {
        auto* x = o ? o->if_contains(k) : nullptr;
        return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    auto* ns = o ? o->if_contains("enqueuedNs") : nullptr;
    if (!o || !ns || !ns->is_int64())
        return error{errc::corrupt_data, "Stored feedback record " + std::to_string(f.sequence_number) + " is malformed."};
    f.original_message_id = str("originalMessageId");
    f.description = str("description");
    f.device_generation_id = str("deviceGenerationId");
    f.device_id = str("deviceId");
    f.module_id = str("moduleId");
    f.enqueued_time_ns = ns->get_int64();
    f.status_code = str("statusCode");
    return {};
}

std::vector<std::string> serialize_docs(const write_batch& b) {
    std::vector<std::string> docs;
    docs.reserve(b.size());
    for (auto& o : b.ops()) {
        docs.push_back(std::visit(
            [](auto& op) -> std::string {
                using T = std::decay_t<decltype(op)>;
                if constexpr (std::is_same_v<T, write_batch::put_policy_op>)
                    return boost::json::serialize(auth::to_storage_json(op.p));
                else if constexpr (std::is_same_v<T, write_batch::put_device_op>)
                    return boost::json::serialize(registry::to_storage_json(op.d));
                else if constexpr (std::is_same_v<T, write_batch::put_module_op>)
                    return boost::json::serialize(registry::to_storage_json(op.m));
                else if constexpr (std::is_same_v<T, write_batch::put_twin_op>)
                    return twin::to_storage_text(*op.t);
                else if constexpr (std::is_same_v<T, write_batch::put_session_op>)
                    return session_doc(op.s);
                else if constexpr (std::is_same_v<T, write_batch::append_event_op>)
                    return event_props(op.e);
                else if constexpr (std::is_same_v<T, write_batch::enqueue_c2d_op>)
                    return c2d_props(op.m);
                else if constexpr (std::is_same_v<T, write_batch::append_feedback_op>)
                    return feedback_doc(op.f);
                else if constexpr (std::is_same_v<T, write_batch::put_setting_op>)
                    return op.doc;
                else
                    return {};
            },
            o));
    }
    return docs;
}

}  // namespace twinhub::store
