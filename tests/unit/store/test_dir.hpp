// A fresh temporary directory for one test, removed with everything in it afterwards.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace twinhub::store::testing {

class test_dir {
public:
    test_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "twinhub-store-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) std::abort();
        path_ = tmpl;
    }
    ~test_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    test_dir(const test_dir&) = delete;
    test_dir& operator=(const test_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    std::filesystem::path path_;
};

}  // namespace twinhub::store::testing
