// Engine::readQuality: the call-quality figures of a stream are owned by its I/O thread and never shared, so
// the control plane asks that thread to copy them (one command, tens of µs, only on query/delete/statistics)
// instead of every packet publishing them.
#include "engine.hpp"

namespace ngrelay {

bool Engine::readQuality(int32_t id, QualitySnapshot& out) const {
  if (closed_) return false;
  auto it = streams_.find(id);
  if (it == streams_.end()) return false;
  Stream* s = it->second.stream.get();
  Completion done(1);
  Command c{};
  c.type = CommandType::ReadQuality;
  c.stream = s;
  c.sink = nullptr;
  c.done = &done;
  c.rec = nullptr;
  c.qualityOut = &out;
  s->owner->submit(c);
  done.wait();
  return true;
}

}  // namespace ngrelay
