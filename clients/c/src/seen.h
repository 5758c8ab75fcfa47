// Duplicates dropped by (conversation, seq) (DESIGN 5): QoS 1 delivers at least once, and a
// reconnect can bring again a message whose PUBACK was lost with the old connection. The broker
// delivers each conversation in seq order, so a seq at or below the last one shown is a repeat.
// Fixed size: the SEEN_CONVERSATIONS most recently active conversations are remembered.
#ifndef WMQ_SEEN_H
#define WMQ_SEEN_H

#include <stdbool.h>
#include <stdint.h>

#ifndef SEEN_CONVERSATIONS
#define SEEN_CONVERSATIONS 16
#endif

struct seen {
  struct { uint64_t conversation, last_seq, used; } slots[SEEN_CONVERSATIONS];
  uint64_t clock;
};

// True when (conversation, seq) was shown already; otherwise records it and returns false.
bool seen_before(struct seen *seen, uint64_t conversation, uint64_t seq);

#endif
