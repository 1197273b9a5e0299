// core::StateStore as a snapshot plus an append-only journal under <state-dir>, and the daemon ID.
//
// Files:
//   state.json     the snapshot: {"version": 2, "seq": N, "networks": [...]} (every field of every
//                  Network and Endpoint). A version 1 file (the previous format, whole state
//                  rewritten on every save) is read as is and replaced by a v2 snapshot on the
//                  first save (migration).
//   state.journal  one line per save: "J <len> <crc32> <json>\n", json = {"seq": N, "ops": [...]}
//                  with ops put_net (network without endpoints), del_net, put_ep, del_ep.
//   daemon-id      64 hex characters, created once (write-temp + fsync + rename) and kept forever.
//
// Cost: save() diffs the new state against the last saved one in memory and appends ONE fsync'd
// journal record with only what changed (a connect writes one endpoint, whatever the number of
// networks, endpoints or published ports). When the journal outgrows max(256 KiB, the snapshot),
// save() compacts: snapshot to state.json.tmp, fsync, rename, fsync of the directory, then the
// journal is truncated (records with seq <= the snapshot's are ignored on load, so a crash between
// the rename and the truncation is harmless). Amortised, a save costs O(size of the change).
//
// Crash safety and corruption: a record is valid only with its full length and checksum. A bad
// record at the END of the journal is a torn write of a save that never returned: it is reported
// (log warning and torn_tail()), copied to state.journal.torn-<unix time> and cut off. A bad record
// followed by valid ones, or a snapshot that does not parse, is corruption: load() fails with an
// error naming the file and the offset, the files are left untouched, and save() refuses to write
// until a load() succeeds (so a corrupt file is never overwritten).
//
// A new journal file is made durable (fsync of the directory) before its first record counts.
// Metrics (base/opstats.hpp): every journal fdatasync is timed through opstats::observe(
// "journal_fsync", seconds) and every compaction counted as "journal_compactions".
//
// Read-only mode: when an append fails and the journal cannot be cut back to its last good record
// (ftruncate fails: EIO, a full or read-only file system...), garbage may follow the good records;
// appending more would leave a file the next load() refuses. So the store turns read-only: every
// later save() fails with ErrorKind::Unavailable naming the reason (read_only()), which is logged
// once and published process-wide (read_only_reason(), shown by GET /v1/info and `netctl info`).
// The next start's load() cuts the garbage off as a torn tail and has every acknowledged save.
//
// Malformed content (a field of the wrong type, a number out of its range such as "1e999" or a
// port of 70000, a JSON syntax error) fails load() with ErrorKind::InvalidArgument naming the
// file, the field and the value; no nlohmann exception escapes.
//
// Threading: not thread-safe; called from the daemon's kernel worker only (read_only_reason() may
// be called from any thread).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "core/engine.hpp"

namespace cnetd::store {

class FileStateStore final : public core::StateStore {
public:
    explicit FileStateStore(std::string dir);
    // Creates the directory (mode 0700) if missing.
    Result<void> init();
    // Snapshot + journal replay (see above). Also (re)arms save() after a failure.
    Result<std::vector<core::Network>> load() override;
    // Appends the difference to the last loaded/saved state (nothing when nothing changed).
    Result<void> save(const std::vector<core::Network>& networks) override;
    // The persistent daemon ID (64 hex characters): read, or created on first use.
    Result<std::string> daemon_id();

    std::string path() const { return dir_ + "/state.json"; }
    std::string journal_path() const { return dir_ + "/state.journal"; }
    // Bytes appended to the journal since the last compaction, and compactions so far.
    uint64_t journal_bytes() const noexcept { return journal_bytes_; }
    unsigned compactions() const noexcept { return compactions_; }
    // The last load() found (and cut off) a torn record at the end of the journal.
    bool torn_tail() const noexcept { return torn_tail_; }
    // Why save() refuses (read-only mode, see above), or "" while writable.
    const std::string& read_only() const noexcept { return read_only_; }
    // Compaction threshold floor (tests lower it).
    void set_compact_floor(uint64_t bytes) noexcept { compact_floor_ = bytes; }

private:
    Result<void> compact(const std::vector<core::Network>& networks);
    Result<void> append(const std::string& payload);
    Result<void> open_journal();
    Result<void> replay_journal(std::map<std::string, core::Network>& nets, uint64_t snap_seq,
                                uint64_t& seq);
    // After a failed append: truncate the journal to its last good record, or turn read-only.
    void cut_back();
    void set_read_only(std::string reason);

    std::string dir_;
    bool loaded_ = false;      // save() is allowed: last load() succeeded (or compact wrote)
    bool need_compact_ = false;  // v1 file loaded, or state never saved in v2
    std::map<std::string, core::Network> last_;  // last persisted state, by network id
    uint64_t seq_ = 0;
    uint64_t journal_bytes_ = 0;
    uint64_t snapshot_bytes_ = 0;
    uint64_t compact_floor_ = 256 * 1024;
    unsigned compactions_ = 0;
    bool torn_tail_ = false;
    UniqueFd journal_;
    std::string read_only_;  // "" = writable
};

// The read-only reason of the process's state store (the last one to change mode), "" when it is
// writable. The daemon has one store; GET /v1/info reports this as StateReadOnly.
std::string read_only_reason();

}  // namespace cnetd::store
