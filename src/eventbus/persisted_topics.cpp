#include "eventbus/persisted_topics.hpp"

#include <mutex>
#include <utility>

namespace ebus::eventbus {

// What the store thread hands to the loop.
struct persisted_topics::shared {
  persisted_topics* owner = nullptr;  // loop thread only
  std::mutex mutex;
  asio::any_io_executor loop;                  // guarded by mutex
  std::vector<store::batch_outcome> outcomes;  // guarded by mutex
  bool posted = false;                         // guarded by mutex: a deliver() is on its way

  // Called with the mutex held.
  void post_locked(const std::shared_ptr<shared>& self) {
    if (posted || !loop || outcomes.empty()) return;
    posted = true;
    asio::post(loop, [weak = std::weak_ptr(self)] {
      if (auto s = weak.lock(); s && s->owner != nullptr) s->owner->deliver();
    });
  }
};

persisted_topics::persisted_topics(std::shared_ptr<shared> state) : shared_(std::move(state)) {
  shared_->owner = this;
}

persisted_topics::~persisted_topics() {
  close();
  shared_->owner = nullptr;
}

expected<persisted_topics::opened, std::string> persisted_topics::open(const std::string& path,
                                                                       persisted_options options) {
  auto db = store::topic_store::open(path, options.busy_timeout);
  if (!db) return fail(std::move(db.error()));
  auto topics = db->list();
  if (!topics) return fail(std::move(topics.error()));

  auto state = std::make_shared<shared>();
  state->loop = std::move(options.loop);
  std::unique_ptr<persisted_topics> self(new persisted_topics(state));
  // Runs on the store thread; the writer is joined before `state` can go.
  self->writer_ = std::make_unique<store::topic_writer>(
      std::move(*db), std::move(options.writer),
      [raw = state.get(), weak = std::weak_ptr(state)](store::batch_outcome out) {
        std::lock_guard lock(raw->mutex);
        raw->outcomes.push_back(std::move(out));
        if (auto s = weak.lock()) raw->post_locked(s);
      });
  return opened{std::move(self), std::move(*topics)};
}

void persisted_topics::bind(asio::any_io_executor loop) {
  std::lock_guard lock(shared_->mutex);
  if (shared_->loop) return;
  shared_->loop = std::move(loop);
  shared_->post_locked(shared_);
}

persisted_topics::result persisted_topics::add(std::string topic, result_handler done) {
  return submit({store::topic_write::kind::insert, std::move(topic)}, std::move(done));
}

persisted_topics::result persisted_topics::remove(std::string topic, result_handler done) {
  return submit({store::topic_write::kind::remove, std::move(topic)}, std::move(done));
}

persisted_topics::result persisted_topics::submit(store::topic_write w, result_handler done) {
  if (closed_) return fail(std::string("the store is closed (shutting down)"));
  auto seq = writer_->submit(std::move(w));
  if (!seq) return fail(std::move(seq.error()));
  last_seq_ = *seq;
  waiting_.push_back({*seq, std::move(done)});
  return {};
}

void persisted_topics::barrier(std::function<void()> done) {
  if (waiting_.empty()) {
    if (done) done();
    return;
  }
  barriers_.emplace_back(last_seq_, std::move(done));
}

store::writer_stats persisted_topics::stats() const {
  return writer_->stats();
}

void persisted_topics::deliver() {
  std::vector<store::batch_outcome> outcomes;
  {
    std::lock_guard lock(shared_->mutex);
    outcomes.swap(shared_->outcomes);
    shared_->posted = false;
  }
  for (auto& out : outcomes) {
    result r;
    if (out.result != store::batch_outcome::status::committed) r = fail(std::move(out.error));
    // A handler may queue more writes or barriers: take each entry out before calling it.
    while (!waiting_.empty() && waiting_.front().seq <= out.last_seq) {
      auto w = std::move(waiting_.front());
      waiting_.pop_front();
      if (w.done) w.done(r);
    }
    while (!barriers_.empty() && barriers_.front().first <= out.last_seq) {
      auto fn = std::move(barriers_.front().second);
      barriers_.pop_front();
      if (fn) fn();
    }
  }
}

void persisted_topics::close() {
  if (closed_) return;
  closed_ = true;
  writer_->close();
  // Every write has its outcome now; report them here, before the bus shuts down.
  deliver();
  // Barriers are only queued behind waiting writes, so none can be left; be safe anyway.
  auto barriers = std::move(barriers_);
  barriers_.clear();
  for (auto& [seq, fn] : barriers)
    if (fn) fn();
}

}  // namespace ebus::eventbus
