#include "query/query_request.hpp"

#include <boost/json/parse.hpp>

#include <charconv>

namespace twinhub::query {

result<query_page> run_query_request(query_engine& engine, std::string_view body,
                                     std::optional<std::string_view> max_item_count,
                                     std::optional<std::string_view> continuation) {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    const boost::json::value* q = nullptr;
    if (!ec && v.is_object()) q = v.get_object().if_contains("query");
    if (!q || !q->is_string())
        return error{errc::invalid_argument, R"(The request body must be a JSON object {"query":"SELECT ..."}.)"};

    std::size_t items = 0;  // the engine's default
    if (max_item_count) {
        std::string_view s = *max_item_count;
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        std::uint64_t n = 0;
        auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (s.empty() || err == std::errc::invalid_argument || p != s.data() + s.size() ||
            (err == std::errc() && n == 0))
            return error{errc::invalid_argument, "x-ms-max-item-count must be a positive integer, got '" +
                                                     std::string(max_item_count->substr(0, 32)) + "'."};
        // Out of range (err == result_out_of_range) is simply a very large page: capped.
        items = err == std::errc::result_out_of_range ? max_page_items : static_cast<std::size_t>(std::min<std::uint64_t>(n, max_page_items));
    }
    const auto& sql = q->get_string();
    return engine.run(std::string_view(sql.data(), sql.size()), items, continuation.value_or(std::string_view{}));
}

}  // namespace twinhub::query
