// The daemon's state as Prometheus gauges, refreshed at every scrape.
#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "api/metrics/registry.h"
#include "api/routes/daemon_routes.h"
#include "daemon/orchestrator.h"
#include "daemon/reader.h"

namespace herd::api {

void AddDaemonMetrics(metrics::Registry* reg, const DaemonParts& parts) {
  daemon::Orchestrator* orch = parts.orch;
  daemon::Reader* reader = parts.reader;
  auto& tasks = reg->AddGauge("herd_tasks", "Tasks by kind and state", {"kind", "state"});
  auto& workers = reg->AddGauge("herd_workers", "Registered workers by state", {"state"});
  auto& round = reg->AddGauge("herd_run_round", "Current round of each active run", {"run"});
  auto& progress = reg->AddGauge("herd_stage_progress_ratio",
                                 "Finished share of the current stage's tasks", {"run", "stage"});
  auto& live = reg->AddGauge("herd_rocksdb_live_data_bytes", "RocksDB estimated live data size");
  auto& pending = reg->AddGauge("herd_rocksdb_pending_compaction_bytes",
                                "RocksDB estimated bytes pending compaction");
  auto& disk = reg->AddGauge("herd_run_disk_bytes", "Artifact bytes held by each run", {"run"});
  auto& retries = reg->AddCounter("herd_task_retries_total",
                                  "Tasks requeued after a failure or an expired lease");
  auto retries_seen = std::make_shared<uint64_t>(0);
  auto seen = std::make_shared<std::set<std::pair<std::string, std::string>>>();
  auto runs_seen = std::make_shared<std::set<std::string>>();
  reg->AddCollectHook([=, &tasks, &workers, &round, &progress, &live, &pending, &disk, &retries] {
    const uint64_t r = reader->TaskRetries();
    if (r > *retries_seen) {
      retries.WithLabels({}).Increment(static_cast<double>(r - *retries_seen));
      *retries_seen = r;
    }
    // Every (kind, state) seen once stays exported, at 0 when empty.
    for (const auto& ks : *seen) tasks.WithLabels({ks.first, ks.second}).Set(0);
    for (const auto& [ks, n] : reader->CountTasks().by_kind_state) {
      seen->insert(ks);
      tasks.WithLabels({ks.first, ks.second}).Set(static_cast<double>(n));
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
    int active = 0, stale = 0;
    for (const auto& w : orch->Workers()) (now - w.last_seen_ms < 60'000 ? active : stale)++;
    workers.WithLabels({"active"}).Set(active);
    workers.WithLabels({"stale"}).Set(stale);
    daemon::PageRequest req;
    req.page_size = 1000;
    auto page = reader->ListRuns(req);
    if (page.ok()) {
      for (const auto& r : page->items) {
        // Run ids are few and long-lived (unlike sample or prompt ids).
        if (r.state != "running" && r.state != "paused" && !runs_seen->count(r.id)) continue;
        runs_seen->insert(r.id);
        round.WithLabels({r.id}).Set(r.current_round);
        auto p = orch->Progress(r.id);
        if (p.ok()) {
          disk.WithLabels({r.id}).Set(static_cast<double>(p->disk_bytes));
          if (p->round) {
            for (const auto& st : p->round->stages) {
              double ratio = st.state == "succeeded" ? 1.0
                             : st.tasks_total ? static_cast<double>(st.tasks_done) / st.tasks_total
                                              : 0.0;
              progress.WithLabels({r.id, st.stage}).Set(ratio);
            }
          }
        }
      }
    }
    const daemon::StoreSizes sizes = reader->Sizes();
    live.WithLabels({}).Set(static_cast<double>(sizes.live_data_bytes));
    pending.WithLabels({}).Set(static_cast<double>(sizes.pending_compaction_bytes));
  });
}

}  // namespace herd::api
