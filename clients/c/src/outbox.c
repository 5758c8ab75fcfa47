// The outbox (outbox.h).
#include "outbox.h"

#include <string.h>

bool outbox_full(const struct outbox *box) { return box->span == OUTBOX_SLOTS; }

bool outbox_empty(const struct outbox *box) { return box->span == 0; }

struct send *outbox_at(struct outbox *box, unsigned i) {
  return &box->slots[(box->head + i) % OUTBOX_SLOTS];
}

struct send *outbox_add(struct outbox *box, const char *text, size_t length, uint32_t ref,
                        const uint8_t client_msg_id[CLIENT_MSG_ID_BYTES]) {
  if (outbox_full(box) || length > TEXT_MAX) return NULL;
  struct send *send = outbox_at(box, box->span++);
  *send = (struct send){.state = SEND_WAITING, .ref = ref};
  memcpy(send->client_msg_id, client_msg_id, CLIENT_MSG_ID_BYTES);
  memcpy(send->text, text, length);
  send->text[length] = '\0';
  return send;
}

struct send *outbox_find_id(struct outbox *box, const uint8_t *client_msg_id, size_t length) {
  if (length != CLIENT_MSG_ID_BYTES) return NULL;
  for (unsigned i = 0; i < box->span; i++) {
    struct send *send = outbox_at(box, i);
    if (send->state != SEND_FREE && memcmp(send->client_msg_id, client_msg_id, length) == 0) return send;
  }
  return NULL;
}

struct send *outbox_find_ref(struct outbox *box, uint32_t ref) {
  for (unsigned i = 0; i < box->span; i++) {
    struct send *send = outbox_at(box, i);
    if (send->state != SEND_FREE && send->ref == ref) return send;
  }
  return NULL;
}

void outbox_remove(struct outbox *box, struct send *send) {
  send->state = SEND_FREE;
  while (box->span > 0 && outbox_at(box, 0)->state == SEND_FREE) {
    box->head = (box->head + 1) % OUTBOX_SLOTS;
    box->span--;
  }
  while (box->span > 0 && outbox_at(box, box->span - 1)->state == SEND_FREE) box->span--;
}

void outbox_requeue(struct outbox *box) {
  for (unsigned i = 0; i < box->span; i++) {
    struct send *send = outbox_at(box, i);
    if (send->state == SEND_PUBLISHED) send->state = SEND_WAITING;
  }
}

unsigned outbox_pending(struct outbox *box) {
  unsigned pending = 0;
  for (unsigned i = 0; i < box->span; i++) pending += outbox_at(box, i)->state != SEND_FREE;
  return pending;
}

int64_t outbox_oldest_published(struct outbox *box) {
  int64_t oldest = -1;
  for (unsigned i = 0; i < box->span; i++) {
    struct send *send = outbox_at(box, i);
    if (send->state == SEND_PUBLISHED && (oldest < 0 || send->published_at < oldest)) oldest = send->published_at;
  }
  return oldest;
}
