// The outbox: every send not yet answered by its SendAck, with its client_msg_id, in the order
// it was made. DESIGN 3: the device re-sends until acknowledged and the broker turns repeats of a
// client_msg_id into the first result, so re-sending is always safe.
//
// Fixed size, no allocation (an embedded device): when it is full the client stops taking input
// until acknowledgements free a slot. Sizes can be set at build time: make CFLAGS=-DOUTBOX_SLOTS=4
#ifndef WMQ_OUTBOX_H
#define WMQ_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef OUTBOX_SLOTS
#define OUTBOX_SLOTS 16
#endif
#ifndef TEXT_MAX
#define TEXT_MAX 480  // bytes of one text; the broker takes more (MAX_BODY), a device needs less
#endif
#define CLIENT_MSG_ID_BYTES 8

enum send_state {
  SEND_FREE,       // the slot holds nothing (acknowledged, or refused for good)
  SEND_WAITING,    // to be published on the current connection (once due_at has passed)
  SEND_PUBLISHED,  // published on the current connection, no answer yet
};

struct send {
  enum send_state state;
  uint32_t ref;                // Uplink.ref: an Error reply names the request by it
  int64_t due_at;              // WAITING: not before this (ms, monotonic): a retry after RATE_LIMITED
  int64_t published_at;        // PUBLISHED: when (ms, monotonic)
  uint8_t client_msg_id[CLIENT_MSG_ID_BYTES];
  char text[TEXT_MAX + 1];
};

// A ring in the order sends were made. An answered send frees its slot where it is; the head moves
// past freed slots, so a slot is reused only once every older send is answered.
struct outbox {
  struct send slots[OUTBOX_SLOTS];
  unsigned head;   // the oldest slot
  unsigned span;   // slots from head up to the newest send (freed ones in between included)
};

bool outbox_full(const struct outbox *box);
bool outbox_empty(const struct outbox *box);
// Adds a WAITING send of `text` (length <= TEXT_MAX); NULL when the outbox is full.
struct send *outbox_add(struct outbox *box, const char *text, size_t length, uint32_t ref,
                        const uint8_t client_msg_id[CLIENT_MSG_ID_BYTES]);
// The i-th slot from the oldest (i < span), in the order the sends were made; it may be FREE.
struct send *outbox_at(struct outbox *box, unsigned i);
struct send *outbox_find_id(struct outbox *box, const uint8_t *client_msg_id, size_t length);
struct send *outbox_find_ref(struct outbox *box, uint32_t ref);
void outbox_remove(struct outbox *box, struct send *send);
// The connection is gone: every PUBLISHED send is WAITING again, to be published on the next one.
void outbox_requeue(struct outbox *box);
// How many sends wait for their acknowledgement.
unsigned outbox_pending(struct outbox *box);
// The earliest published_at of a PUBLISHED send, or -1 when none is.
int64_t outbox_oldest_published(struct outbox *box);

#endif
