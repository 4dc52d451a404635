// Exports and backups: what users holding weeks of annotations take away.
//
// GET /v1/runs/{run}/export/{kind} streams a run's samples, pairs,
// annotations or prompts as NDJSON (one record JSON per line, the shapes of
// the listings), fetched a listing page at a time, so neither herdd nor the
// client ever holds the collection. It is not a snapshot: records added
// during the export appear if they sort after the cursor (a backup is the
// consistent copy).
//
// POST /v1/backups {"dir"} takes a backup of the database and the artifacts
// into a directory on the daemon's machine (daemon/backup.h).
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>

#include "api/routes/record_json.h"
#include "api/routes/route_groups.h"
#include "api/routes/route_util.h"
#include "daemon/backup.h"
#include "daemon/reader.h"

namespace herd::api {

using nlohmann::json;

namespace {

// Records per listing page, i.e. per streamed piece.
constexpr uint32_t kExportPageSize = 1000;

// Turns listing pages into NDJSON pieces, one page per piece.
template <typename T>
class PagedExport final : public BodySource {
 public:
  using Fetch = std::function<Result<daemon::Page<T>>(const daemon::PageRequest&)>;
  using ToJson = json (*)(const T&);
  PagedExport(Fetch fetch, ToJson to_json) : fetch_(std::move(fetch)), to_json_(to_json) {}

  Status Next(std::string* piece, bool* done) override {
    daemon::PageRequest req;
    req.page_size = kExportPageSize;
    req.page_token = token_;
    HERD_ASSIGN_OR_RETURN(daemon::Page<T> page, fetch_(req));
    for (const T& x : page.items) AppendJsonLine(to_json_(x), piece);
    token_ = std::move(page.next_page_token);
    *done = token_.empty();
    return Status::Ok();
  }

 private:
  Fetch fetch_;
  ToJson to_json_;
  std::string token_;
};

Result<std::shared_ptr<BodySource>> MakeExport(daemon::Reader* reader, const std::string& run,
                                               const std::string& kind, std::optional<uint32_t> round) {
  if (kind != "samples" && kind != "pairs" && kind != "annotations" && kind != "prompts") {
    return Status::NotFound("no export of kind '" + kind + "': kind is samples, pairs, annotations or prompts");
  }
  if (round && (kind == "annotations" || kind == "prompts")) {
    return Status::InvalidArgument("query parameter 'round': only samples and pairs are exported by round");
  }
  HERD_RETURN_IF_ERROR(reader->GetRun(run).status());
  std::shared_ptr<BodySource> src;
  if (kind == "samples") {
    src = std::make_shared<PagedExport<daemon::Sample>>(
        [=](const daemon::PageRequest& p) { return reader->ListSamples(run, round, p); }, SampleJson);
  } else if (kind == "pairs") {
    src = std::make_shared<PagedExport<daemon::Pair>>(
        [=](const daemon::PageRequest& p) { return reader->ListPairs(run, round, p); }, PairJson);
  } else if (kind == "annotations") {
    src = std::make_shared<PagedExport<daemon::Annotation>>(
        [=](const daemon::PageRequest& p) { return reader->ListAnnotations(run, p); }, AnnotationJson);
  } else {
    src = std::make_shared<PagedExport<daemon::Prompt>>(
        [=](const daemon::PageRequest& p) { return reader->ListPrompts(run, p); }, PromptJson);
  }
  return src;
}

}  // namespace

Status AddExportRoutes(Router& r, const RouteCtx& c) {
  auto* reader = c.reader;
  auto* backups = c.backups;

  HERD_RETURN_IF_ERROR(r.Add("GET", "/v1/runs/{run}/export/{kind}", [reader](const Request& req) {
    auto round = UintQuery(req, "round");
    if (!round.ok()) return Problem(round.status());
    const std::string& run = req.Param("run");
    const std::string& kind = req.Param("kind");
    auto src = MakeExport(reader, run, kind, *round);
    if (!src.ok()) return Problem(src.status());
    Response res = Response::Stream(200, std::move(src).value(), "application/x-ndjson");
    // Ids are store-issued ([a-z0-9-]); the kind is one of four words.
    res.headers.Set("Content-Disposition", "attachment; filename=\"" + run + "-" + kind + ".jsonl\"");
    return res;
  }, RouteOptions{Role::kViewer}));

  HERD_RETURN_IF_ERROR(r.Add("POST", "/v1/backups", [backups](const Request& req) {
    auto body = ObjectBody(req);
    if (!body.ok()) return Problem(body.status());
    std::string dir;
    if (Status s = OptString(*body, "dir", &dir); !s.ok()) return Problem(s);
    if (dir.empty()) return Problem(Status::InvalidArgument("field 'dir': required (an absolute path)"));
    auto info = backups->Create(dir);
    if (!info.ok()) return Problem(info.status());
    return JsonResponse(201, {{"backup",
                               {{"dir", info->dir},
                                {"created_ms", info->created_ms},
                                {"artifact_files", info->artifact_files},
                                {"artifact_bytes", info->artifact_bytes}}}});
  }, RouteOptions{Role::kAdmin}));
  return Status::Ok();
}

}  // namespace herd::api
