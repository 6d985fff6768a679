// The eval commands' default book: $DSA_SHARED_DATA comes before the folders beside the working directory and
// the checkout, so a checkout that does not sit beside the shared data can still be pointed at it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "eval/data_paths.h"
#include "tests/unit/model_fixture.h"

namespace dsa {
namespace {

// Sets DSA_SHARED_DATA for the scope and restores what was there.
class SharedDataEnv {
public:
    explicit SharedDataEnv(const std::string& value) {
        if (const char* old = std::getenv("DSA_SHARED_DATA")) old_ = old;
        ::setenv("DSA_SHARED_DATA", value.c_str(), 1);
    }
    ~SharedDataEnv() {
        if (old_)
            ::setenv("DSA_SHARED_DATA", old_->c_str(), 1);
        else
            ::unsetenv("DSA_SHARED_DATA");
    }
    SharedDataEnv(const SharedDataEnv&) = delete;
    SharedDataEnv& operator=(const SharedDataEnv&) = delete;

private:
    std::optional<std::string> old_;
};

TEST(DefaultEvalBook, TheEnvironmentsSharedDataComesFirst) {
    test::TempDir dir;
    std::filesystem::create_directories(dir / "texts");
    test::write_bytes(dir / "texts" / "pride-and-prejudice.txt", "It is a truth universally acknowledged");
    const SharedDataEnv env(dir.path().string());
    EXPECT_EQ(default_eval_book(), (dir / "texts" / "pride-and-prejudice.txt").lexically_normal());
}

}  // namespace
}  // namespace dsa
