// Duplicate arrivals (seen.h).
#include "seen.h"

bool seen_before(struct seen *seen, uint64_t conversation, uint64_t seq) {
  unsigned slot = 0;
  for (unsigned i = 0; i < SEEN_CONVERSATIONS; i++) {
    if (seen->slots[i].used && seen->slots[i].conversation == conversation) {
      slot = i;
      break;
    }
    if (seen->slots[i].used < seen->slots[slot].used) slot = i;  // else: the least recently used
  }
  if (seen->slots[slot].used && seen->slots[slot].conversation == conversation) {
    if (seq <= seen->slots[slot].last_seq) return true;
  } else {
    seen->slots[slot].conversation = conversation;
  }
  seen->slots[slot].last_seq = seq;
  seen->slots[slot].used = ++seen->clock;
  return false;
}
