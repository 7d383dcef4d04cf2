// Finding a command's keys in its arguments, from key specs, from the legacy
// first/last/step triple, or by the hand-written readers of overrides.h.
// Pure functions over argument views; never read past args.size(); no
// allocation beyond `keys` growing its capacity.
#pragma once

#include <string_view>
#include <vector>

#include "proxy/commands/classification.h"
#include "proxy/commands/command_info.h"

namespace dp::commands {

using Args = std::vector<std::string_view>;

// Appends the keys every usable spec finds.  A spec whose positions fall
// outside args (too few arguments, bad numkeys) contributes nothing, like
// the server's partial key search.
void keys_from_specs(const std::vector<KeySpec>& specs, const Args& args,
                     std::vector<std::string_view>* keys);
// Appends args[first..last] every step (last < 0 counts from the end).
void keys_from_range(int first, int last, int step, const Args& args,
                     std::vector<std::string_view>* keys);

// Runs a hand-written reader: may add keys and adjust kind, blocking,
// db_wide and the other dbs in *out.
void apply_handler(Handler handler, const Args& args, Classification* out);

// True when the hand-written reader finds every key itself (key specs and
// the legacy triple are then not used).
inline bool handler_finds_all_keys(Handler h) { return h == Handler::migrate; }

bool equals_nocase(std::string_view a, std::string_view b);

}  // namespace dp::commands
