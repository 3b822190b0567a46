// twinhubd's --store flag and TWINHUB_STORE (issue 18): a postgresql:// URL or nothing.
#include "server/config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace twinhub::server {
namespace {

std::optional<config> parse(std::vector<std::string> args, int& code) {
    args.insert(args.begin(), "twinhubd");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return parse_config(static_cast<int>(argv.size()), argv.data(), code);
}

TEST(config_store, defaults_to_sqlite_in_the_data_dir) {
    ::unsetenv("TWINHUB_STORE");
    int code = -1;
    auto c = parse({"--data-dir", "/tmp/x"}, code);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->store, "");
}

TEST(config_store, takes_a_postgresql_url_from_the_flag_or_the_environment) {
    int code = -1;
    auto c = parse({"--data-dir", "/tmp/x", "--store", "postgresql://u@h:5432/db?pool=2"}, code);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->store, "postgresql://u@h:5432/db?pool=2");
    ::setenv("TWINHUB_STORE", "postgres://u@h/db", 1);
    c = parse({"--data-dir", "/tmp/x"}, code);
    ::unsetenv("TWINHUB_STORE");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->store, "postgres://u@h/db");
}

TEST(config_store, refuses_anything_else) {
    ::unsetenv("TWINHUB_STORE");
    int code = -1;
    EXPECT_FALSE(parse({"--data-dir", "/tmp/x", "--store", "/var/lib/twinhub.db"}, code));
    EXPECT_EQ(code, 2);
}

}  // namespace
}  // namespace twinhub::server
