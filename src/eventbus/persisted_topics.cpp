#include "eventbus/persisted_topics.hpp"

#include <future>

#include "common/log.hpp"
#include "store/store_thread.hpp"
#include "store/topic_store.hpp"

namespace ebus::eventbus {

persisted_topics::persisted_topics() : thread_(std::make_unique<store::store_thread>()) {}

persisted_topics::~persisted_topics() {
  close();
}

expected<persisted_topics::opened, std::string> persisted_topics::open(const std::string& path) {
  std::unique_ptr<persisted_topics> self(new persisted_topics());
  std::promise<expected<std::vector<std::string>, std::string>> result;
  auto future = result.get_future();
  auto* raw = self.get();
  const bool posted = raw->thread_->post([raw, &path, &result] {
    auto db = store::topic_store::open(path);
    if (!db) {
      result.set_value(fail(std::move(db.error())));
      return;
    }
    auto topics = db->list();
    raw->store_ = std::make_unique<store::topic_store>(std::move(*db));
    result.set_value(std::move(topics));
  });
  if (!posted) return fail(std::string("store thread is not running"));
  auto topics = future.get();
  if (!topics) return fail(std::move(topics.error()));
  return opened{std::move(self), std::move(*topics)};
}

void persisted_topics::add(std::string topic) {
  thread_->post([this, topic = std::move(topic)] {
    if (auto ok = store_->insert(topic); !ok) {
      log::get("store")->error("insert_failed topic=\"{}\" error=\"{}\"", topic, ok.error());
    }
  });
}

void persisted_topics::remove(std::string topic) {
  thread_->post([this, topic = std::move(topic)] {
    if (auto ok = store_->remove(topic); !ok) {
      log::get("store")->error("delete_failed topic=\"{}\" error=\"{}\"", topic, ok.error());
    }
  });
}

void persisted_topics::close() {
  if (!thread_) return;
  thread_->stop();
  store_.reset();  // the thread has ended: closing here cannot race a job
}

}  // namespace ebus::eventbus
