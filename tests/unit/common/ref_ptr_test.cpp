// ref_ptr: the object lives while a pointer to it does, and dies with the last one, also when
// that one is released from inside the object's own call.
#include "common/ref_ptr.hpp"

#include <functional>
#include <utility>

#include <gtest/gtest.h>

namespace ebus {
namespace {

class counted {
 public:
  explicit counted(int& destroyed) : destroyed_(destroyed) {}
  ~counted() { ++destroyed_; }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;

  void add_ref() noexcept { ++refs_; }
  // Out of line: inlined, GCC's use-after-free analysis cannot tell that a count above one
  // keeps the object.
  [[gnu::noinline]] void release() noexcept {
    if (--refs_ == 0) delete this;
  }
  [[nodiscard]] int refs() const noexcept { return refs_; }

  std::function<void()> on_call;
  void call() {
    const ref_ptr<counted> keep(this);  // what follows may drop the last outside reference
    on_call();
  }

 private:
  int& destroyed_;
  int refs_ = 0;
};

TEST(ref_ptr, the_object_dies_with_the_last_pointer) {
  int destroyed = 0;
  auto a = make_ref<counted>(destroyed);
  EXPECT_EQ(a->refs(), 1);
  {
    const ref_ptr<counted> b = a;
    ref_ptr<counted> c(a.get());  // a raw pointer to a counted object takes a reference too
    EXPECT_EQ(a->refs(), 3);
    ref_ptr<counted> d = std::move(c);
    EXPECT_FALSE(c);  // NOLINT(bugprone-use-after-move): a moved-from pointer is empty
    EXPECT_EQ(d, a);
    EXPECT_EQ(a->refs(), 3);
  }
  EXPECT_EQ(a->refs(), 1);
  EXPECT_EQ(destroyed, 0);
  a.reset();
  EXPECT_EQ(destroyed, 1);
  EXPECT_FALSE(a);
}

TEST(ref_ptr, assignment_releases_the_old_object) {
  int destroyed_first = 0;
  int destroyed_second = 0;
  auto p = make_ref<counted>(destroyed_first);
  p = make_ref<counted>(destroyed_second);
  EXPECT_EQ(destroyed_first, 1);
  EXPECT_EQ(destroyed_second, 0);
  const ref_ptr<counted>& same = p;
  p = same;  // self-assignment keeps it
  EXPECT_EQ(p->refs(), 1);
  EXPECT_EQ(destroyed_second, 0);
}

TEST(ref_ptr, an_object_that_holds_itself_survives_losing_its_owner_mid_call) {
  int destroyed = 0;
  auto owner = make_ref<counted>(destroyed);
  bool ran_after = false;
  owner->on_call = [&] {
    owner.reset();            // the only outside reference goes
    EXPECT_EQ(destroyed, 0);  // the call's own reference keeps it
    ran_after = true;
  };
  owner->call();
  EXPECT_TRUE(ran_after);
  EXPECT_EQ(destroyed, 1);  // gone once the call returned
}

}  // namespace
}  // namespace ebus
