// Engine::requestQuality/takeQuality: the call-quality figures of a stream are owned by its I/O thread and
// never shared, so the control plane asks that thread to copy them (a queued command carried by the next
// fence, only on query/delete) instead of every packet publishing them.
#include "engine.hpp"

namespace ngrelay {

uint64_t Engine::requestQuality(const std::vector<int32_t>& ids) {
  const uint64_t token = ++lastQualityToken_;
  auto& batch = qualityBatches_[token];
  batch.resize(ids.size());
  if (closed_) return token;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = streams_.find(ids[i]);
    if (it == streams_.end()) continue;
    batch[i] = std::make_unique<QualitySnapshot>();
    Command c{};
    c.type = CommandType::ReadQuality;
    c.stream = it->second.stream.get();
    c.qualityOut = batch[i].get();
    queueOn(c);  // no wake-up: the caller's next fence (or sync) carries it
  }
  return token;
}

std::vector<std::unique_ptr<QualitySnapshot>> Engine::takeQuality(uint64_t token) {
  auto it = qualityBatches_.find(token);
  if (it == qualityBatches_.end()) return {};
  auto out = std::move(it->second);
  qualityBatches_.erase(it);
  return out;
}

}  // namespace ngrelay
