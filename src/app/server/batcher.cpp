#include "app/server/batcher.h"

#include <algorithm>

#include "app/server/http_error.h"

namespace vidi::server {
namespace {
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Text-only turns batch together; videos by content.
std::string batch_key(const QueryRequest& r) { return r.source.file ? "video:" + r.source.sha256 : "text"; }
}  // namespace

// ---- QueryTicket ----

bool QueryTicket::wait_newer(uint64_t seen, Clock::time_point deadline) const {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return state_.version > seen || state_.finished || state_.error; });
}

QueryTicket::State QueryTicket::state() const {
    std::lock_guard lock(mu_);
    return state_;
}

void QueryTicket::cancel(const std::string& reason) {
    std::function<void()> hook;
    {
        std::lock_guard lock(mu_);
        if (cancelled_ || state_.finished || state_.error) return;
        cancelled_ = true;
        reason_ = reason;
        hook = on_cancel_;
    }
    if (hook) hook();
}

bool QueryTicket::cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
}

std::string QueryTicket::cancel_reason() const {
    std::lock_guard lock(mu_);
    return reason_;
}

void QueryTicket::update(const std::string& text, int tokens) {
    {
        std::lock_guard lock(mu_);
        state_.text = text;
        state_.tokens = tokens;
        ++state_.version;
    }
    cv_.notify_all();
}

void QueryTicket::finish() {
    {
        std::lock_guard lock(mu_);
        if (state_.error) return;
        state_.text = request_->answer.text;
        state_.tokens = request_->answer.timings.generated_tokens;
        state_.finished = true;
        ++state_.version;
    }
    cv_.notify_all();
}

void QueryTicket::fail(std::exception_ptr error) {
    {
        std::lock_guard lock(mu_);
        if (state_.finished || state_.error) return;
        state_.error = std::move(error);
        ++state_.version;
    }
    cv_.notify_all();
}

void QueryTicket::on_cancel(std::function<void()> f) {
    std::lock_guard lock(mu_);
    on_cancel_ = std::move(f);
}

// ---- Batcher ----

// Requests about one video that run as one batch: all its members (waiting to join or
// decoding; max_batch bounds them) and those of them not yet in the batch.
struct Batcher::Entry {
    std::string key;
    std::mutex mu;
    std::vector<Member> members;
    std::vector<Member> pending;
    bool started = false;
    bool closed = false;  // takes no newcomers (finished, full of others' waiting, cancelled)
    std::unique_ptr<JobQueue::Ticket> job;
};

Batcher::Batcher(Engine& engine, JobQueue& queue, VideoCache& cache, Metrics& metrics, int max_batch)
    : engine_(engine), queue_(queue), cache_(cache), metrics_(metrics), max_batch_(std::max(1, max_batch)) {}

std::shared_ptr<QueryTicket> Batcher::submit(std::shared_ptr<QueryRequest> request) {
    auto ticket = std::make_shared<QueryTicket>(request);
    const std::string key = batch_key(*request);
    std::lock_guard lock(mu_);
    auto join = [&](const std::shared_ptr<Entry>& e) {
        ticket->on_cancel([weak = std::weak_ptr<Entry>(e), ticket_ptr = ticket.get()] {
            // When every member gave up, the job stops too (a long encode included).
            auto entry = weak.lock();
            if (!entry) return;
            std::lock_guard el(entry->mu);
            for (const Member& m : entry->members)
                if (!m->cancelled()) return;
            entry->closed = true;
            if (entry->job) entry->job->cancel(ticket_ptr->cancel_reason());
        });
        e->pending.push_back(ticket);
        e->members.push_back(ticket);
    };
    if (auto it = open_.find(key); it != open_.end()) {
        Entry& e = *it->second;
        std::lock_guard el(e.mu);
        // A running batch takes newcomers only while nothing else waits for the engine.
        if (!e.closed && e.members.size() < max_batch_ && (!e.started || queue_.waiting() == 0)) {
            join(it->second);
            return ticket;
        }
        if (e.started && !e.closed && queue_.waiting() > 0) e.closed = true;
    }
    auto entry = std::make_shared<Entry>();
    entry->key = key;
    {
        std::lock_guard el(entry->mu);
        join(entry);
    }
    std::weak_ptr<Entry> weak = entry;
    auto job = queue_.submit([this, entry] { run(entry); }, nullptr, [this, weak](const std::string& why) {
        if (auto e = weak.lock()) {
            close(*e);
            std::vector<Member> dropped;
            {
                std::lock_guard el(e->mu);
                dropped.swap(e->pending);
            }
            for (const Member& m : dropped) m->fail(std::make_exception_ptr(JobCancelled(why)));
        }
    });
    if (!job)
        throw HttpError(503, "busy: " + std::to_string(queue_.waiting()) + " requests are already waiting; retry later");
    {
        std::lock_guard el(entry->mu);
        entry->job = std::move(job);
    }
    open_[key] = entry;
    return ticket;
}

size_t Batcher::waiting() const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& [key, e] : open_) {
        std::lock_guard el(e->mu);
        n += e->pending.size();
    }
    return n;
}

std::vector<Batcher::Member> Batcher::take_newcomers(Entry& e) {
    std::lock_guard el(e.mu);
    e.started = true;
    std::vector<Member> out;
    out.swap(e.pending);
    return out;
}

void Batcher::close(Entry& e) {
    {
        std::lock_guard el(e.mu);
        e.closed = true;
    }
    std::lock_guard lock(mu_);
    if (auto it = open_.find(e.key); it != open_.end() && it->second.get() == &e) open_.erase(it);
}

void Batcher::leave(Entry& e, const Member& m) {
    std::lock_guard el(e.mu);
    std::erase(e.members, m);
}

void Batcher::run(const std::shared_ptr<Entry>& entry) {
    Entry& e = *entry;
    struct Row {
        Member ticket;
        int row;
        int tokens = 0;
    };
    std::vector<Row> rows;
    std::vector<Member> newcomers = take_newcomers(e);
    auto fail_everyone = [&](std::exception_ptr error) {
        close(e);
        std::vector<Member> rest = take_newcomers(e);
        newcomers.insert(newcomers.end(), rest.begin(), rest.end());
        for (Row& r : rows) r.ticket->fail(error);
        for (Member& m : newcomers) m->fail(error);
        {  // they left: the entry holds none of their requests (uploads, leases, open files)
            std::lock_guard el(e.mu);
            e.members.clear();
        }
        metrics_.batch_rows(0);
    };
    try {
        // The video, once for every member (they share its content).
        std::shared_ptr<const Video> video;
        std::string source;
        double video_s = 0;
        const Member* first = nullptr;
        for (const Member& m : newcomers)
            if (!m->cancelled()) first = &m;
        if (first && (*first)->request().source.file) {
            const VideoSource& src = (*first)->request().source;
            const auto t0 = Clock::now();
            VideoCache::Hit hit;
            try {
                hit = cache_.get(src.file->path(), src.sha256);
            } catch (const vidi::Error& err) {
                if (mentions_out_of_memory(err.what())) throw;
                throw video_unavailable(src.file->real_path() + ": " + err.what());
            }
            video = hit.video;
            source = hit.source;
            video_s = seconds_since(t0);
            metrics_.video_lookup(source, video_s);
        }
        std::unique_ptr<Batch> batch = engine_.batch(video.get());
        bool first_rows = true;
        for (;;) {
            for (Member& m : newcomers) {
                QueryRequest& req = m->request();
                if (m->cancelled()) {
                    m->fail(std::make_exception_ptr(JobCancelled(m->cancel_reason())));
                    leave(e, m);
                    continue;
                }
                req.queue_s = seconds_since(req.queued);
                req.cache_source = !video ? "" : first_rows ? source : "memory";
                req.video_s = first_rows ? video_s : 0;
                // One lookup a request: the rest share the video the first one looked up (so
                // the count does not depend on whether a question joined or found the batch gone).
                if (video && &m != first) metrics_.video_lookup("memory", 0);
                try {
                    rows.push_back({m, batch->add(req.question), 0});
                } catch (const JobCancelled&) {
                    throw;
                } catch (...) {  // this question only (too long a prompt, say)
                    m->fail(std::current_exception());
                    leave(e, m);
                }
            }
            newcomers.clear();
            first_rows = false;
            first = nullptr;
            // Members that stopped waiting leave the batch.
            std::erase_if(rows, [&](Row& r) {
                if (!r.ticket->cancelled()) return false;
                batch->cancel(r.row);
                r.ticket->fail(std::make_exception_ptr(JobCancelled(r.ticket->cancel_reason())));
                leave(e, r.ticket);
                return true;
            });
            if (rows.empty()) {
                newcomers = take_newcomers(e);
                if (!newcomers.empty()) continue;
                close(e);
                newcomers = take_newcomers(e);  // any that joined before it closed
                if (newcomers.empty()) break;
                continue;
            }
            // Others wait for the engine: no newcomers from now on (they queue behind them).
            if (queue_.waiting() > 0) close(e);
            const auto t0 = Clock::now();
            std::vector<BatchEvent> events = batch->step();
            // The metrics first, so that a client reading them after its answer sees its step.
            int tokens = 0, finished = 0;
            for (const BatchEvent& ev : events) {
                tokens += ev.token >= 0;
                finished += ev.finished;
                if (ev.finished) {
                    const Timings& tm = ev.answer.timings;
                    metrics_.prefill(tm.prompt_tokens, tm.prefill_s / std::max(1, tm.prefill_rows));  // its share
                }
            }
            metrics_.batch_step(static_cast<int>(events.size()), tokens, seconds_since(t0));
            metrics_.batch_rows(static_cast<int>(events.size()) - finished);
            const Engine::MemoryUse mem = engine_.memory_use();
            metrics_.gpu_memory(mem.in_use, mem.limit);
            for (BatchEvent& ev : events) {
                auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.row == ev.row; });
                if (it == rows.end()) continue;
                QueryTicket& t = *it->ticket;
                if (ev.token >= 0) {
                    ++it->tokens;
                    if (!ev.finished) t.update(ev.text, it->tokens);
                }
                if (!ev.finished) continue;
                t.request().answer = std::move(ev.answer);
                t.finish();
                leave(e, it->ticket);
                rows.erase(it);
            }
            newcomers = take_newcomers(e);
        }
        metrics_.batch_rows(0);
    } catch (...) {
        fail_everyone(std::current_exception());
    }
}

}  // namespace vidi::server
