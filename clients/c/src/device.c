// wmq-device: the embedded-device client (issue 4 §4; README.md beside the Makefile).
//
// One thread and one poll() loop over the MQTT socket and standard input. libmosquitto frames
// MQTT (mosquitto_loop_read/write/misc); connecting, reconnecting and re-sending are done here:
//   - MQTT 3.1.1 (aedes refuses MQTT 5), clean session false, client id = the device id,
//     username = login, password = token (DESIGN 8). The client never subscribes: the broker
//     subscribes the session to u/{user} and d/{device} itself at connect (DESIGN 6).
//   - Each connection starts from a reinitialised libmosquitto client, so libmosquitto never
//     replays its own idea of what is in flight: the outbox is the one record of what must be
//     (re)sent, and every unanswered send is published again on each new connection until its
//     SendAck arrives (DESIGN 3: repeats are idempotent). The PUBACK is not that answer: aedes
//     sends it before the message is stored (DESIGN 4).
//   - A dead link is found by the keepalive, or sooner by a send left unanswered (REPLY_TIMEOUT_MS);
//     reconnects wait a jittered, doubling delay.
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "chat.pb-c.h"
#include "options.h"
#include "outbox.h"
#include "print.h"
#include "seen.h"

// CONNACK must come within this, ms: TCP and MQTT handshakes are 2 round trips (2.6 s on 2G
// rural, 650 ms one way) plus SYN retransmissions after 1 s and 3 s; the TypeScript SDK's value.
#define CONNECT_TIMEOUT_MS 15000
// A send unanswered this long while nothing at all arrives means the link is dead, ms. A 2G round
// trip is 1.3 s and a TCP retransmission max(1 s, 3 x RTT) = 3.9 s: 15 s covers the round trip,
// two retransmissions and a few KB queued ahead of the reply at 20 kbit/s, and finds a dead link
// in 15 s instead of the keepalive's 90-120 s.
#define REPLY_TIMEOUT_MS 15000
// Reconnect delay: doubling from 0.5 s to 30 s, each drawn in [delay/2, delay] so that devices
// that lost the same cell do not all come back at once (Mars' jittered reconnect).
#define RECONNECT_MIN_MS 500
#define RECONNECT_MAX_MS 30000
// After RATE_LIMITED or UNAVAILABLE a send is published again after this, ms.
#define RETRY_AFTER_MS 5000
// The loop wakes at least this often for libmosquitto's keepalive and the timeouts above, ms.
#define TICK_MS 1000
// The largest Uplink{send}: the text and about 40 bytes of ref, client_msg_id, recipient and tags.
#define UPLINK_MAX (TEXT_MAX + 64)

enum link { LINK_DOWN, LINK_CONNECTING, LINK_UP };

struct device {
  struct options options;
  struct mosquitto *mosq;
  enum link link;
  int64_t link_since;       // when the link entered its state
  int64_t retry_at;         // LINK_DOWN: when to connect again
  int backoff_ms;
  int64_t last_arrival;     // the last packet of any kind from the broker on this connection
  const char *lost;         // set by a callback: the connection ended (the loop handles it)
  int refused;              // a CONNACK refusal that retrying cannot fix: the process exits
  uint32_t next_ref;
  struct outbox outbox;
  unsigned next_send_arg;   // --send texts taken into the outbox so far
  bool stdin_open;
  char input[TEXT_MAX + 2]; // the line being read from standard input, with its \r\n
  size_t input_length;
  bool skipping_line;       // the current input line is too long: dropped up to its end
  struct seen seen;
  unsigned long texts_shown;
};

static volatile sig_atomic_t stopping;

static void stop(int signal_number) {
  (void)signal_number;
  stopping = 1;
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void random_bytes(void *buffer, size_t length) {
  if (getrandom(buffer, length, 0) != (ssize_t)length) {
    perror("wmq-device: getrandom");
    exit(1);
  }
}

// Why libmosquitto gave up on a connection, in words.
static const char *describe(int rc) {
  if (rc == MOSQ_ERR_ERRNO) return strerror(errno);
  if (rc == MOSQ_ERR_KEEPALIVE) return "no PINGRESP within the keepalive";
  return mosquitto_strerror(rc);
}

static const char *error_name(Wmq__ErrorCode code) {
  const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(&wmq__error_code__descriptor, (int)code);
  return value ? value->name : "UNKNOWN";
}

// ---- the outbox side: taking sends in, publishing them ----

static void take_send(struct device *dev, const char *text, size_t length) {
  if (length == 0) return;
  if (length > TEXT_MAX) {
    fprintf(stderr, "wmq-device: a text of %zu bytes is over TEXT_MAX (%d): not sent\n", length, TEXT_MAX);
    return;
  }
  uint8_t client_msg_id[CLIENT_MSG_ID_BYTES];
  random_bytes(client_msg_id, sizeof client_msg_id);  // DESIGN 3: chosen by the device, 8 random bytes
  if (++dev->next_ref == 0) dev->next_ref = 1;       // 0 means "no reply wanted"
  outbox_add(&dev->outbox, text, length, dev->next_ref, client_msg_id);
}

// Takes complete lines out of the input buffer while the outbox has room.
static void take_input_lines(struct device *dev) {
  while (!outbox_full(&dev->outbox)) {
    char *newline = memchr(dev->input, '\n', dev->input_length);
    if (!newline) break;
    size_t length = (size_t)(newline - dev->input);
    size_t text_length = length > 0 && dev->input[length - 1] == '\r' ? length - 1 : length;
    if (dev->skipping_line) {
      dev->skipping_line = false;
      fprintf(stderr, "wmq-device: a line over TEXT_MAX (%d bytes) was not sent\n", TEXT_MAX);
    } else {
      take_send(dev, dev->input, text_length);
    }
    dev->input_length -= length + 1;
    memmove(dev->input, newline + 1, dev->input_length);
  }
  if (dev->input_length == sizeof dev->input) {  // no end of line in sight: too long
    dev->skipping_line = true;
    dev->input_length = 0;
  }
}

static void read_stdin(struct device *dev) {
  ssize_t n = read(STDIN_FILENO, dev->input + dev->input_length, sizeof dev->input - dev->input_length);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    dev->stdin_open = false;
    if (dev->input_length > 0 && dev->input_length < sizeof dev->input) dev->input[dev->input_length++] = '\n';
  } else {
    dev->input_length += (size_t)n;
  }
  take_input_lines(dev);
}

static void take_input(struct device *dev) {
  while (!outbox_full(&dev->outbox) && dev->next_send_arg < dev->options.send_count) {
    const char *text = dev->options.sends[dev->next_send_arg++];
    take_send(dev, text, strlen(text));
  }
  take_input_lines(dev);
}

static void publish(struct device *dev, struct send *send) {
  Wmq__Content content = WMQ__CONTENT__INIT;
  content.body_case = WMQ__CONTENT__BODY_TEXT;
  content.text = send->text;
  Wmq__Send request = WMQ__SEND__INIT;
  request.client_msg_id.data = send->client_msg_id;
  request.client_msg_id.len = CLIENT_MSG_ID_BYTES;
  if (dev->options.group) {
    request.to_case = WMQ__SEND__TO_GROUP;
    request.group = dev->options.group;
  } else {
    request.to_case = WMQ__SEND__TO_USER;
    request.user = dev->options.user;
  }
  request.content = &content;
  Wmq__Uplink uplink = WMQ__UPLINK__INIT;
  uplink.ref = send->ref;
  uplink.request_case = WMQ__UPLINK__REQUEST_SEND;
  uplink.send = &request;

  uint8_t bytes[UPLINK_MAX];  // on the stack: protobuf-c packs without allocating
  size_t length = wmq__uplink__get_packed_size(&uplink);
  if (length > sizeof bytes) {  // cannot happen while UPLINK_MAX covers TEXT_MAX
    fprintf(stderr, "wmq-device: uplink of %zu bytes over UPLINK_MAX\n", length);
    exit(1);
  }
  wmq__uplink__pack(&uplink, bytes);
  int rc = mosquitto_publish(dev->mosq, NULL, "s", (int)length, bytes, 1, false);  // QoS 1 on the uplink `s`
  if (rc != MOSQ_ERR_SUCCESS) {
    if (!dev->lost) dev->lost = describe(rc);
    return;
  }
  send->state = SEND_PUBLISHED;
  send->published_at = now_ms();
}

static void publish_waiting(struct device *dev) {
  int64_t now = now_ms();
  for (unsigned i = 0; i < dev->outbox.span && !dev->lost; i++) {
    struct send *send = outbox_at(&dev->outbox, i);
    if (send->state == SEND_WAITING && send->due_at <= now) publish(dev, send);
  }
}

// ---- what arrives: replies on d/{device}, messages on u/{user} ----

static void on_send_ack(struct device *dev, const Wmq__SendAck *ack) {
  struct send *send = outbox_find_id(&dev->outbox, ack->client_msg_id.data, ack->client_msg_id.len);
  if (!send) return;  // the answer to a repeat (already shown), or to a previous run
  print_ack(ack->conversation, ack->seq, send->text);
  outbox_remove(&dev->outbox, send);
}

static void on_error(struct device *dev, uint32_t ref, const Wmq__Error *error) {
  struct send *send = ref ? outbox_find_ref(&dev->outbox, ref) : NULL;
  if (send && (error->code == WMQ__ERROR_CODE__RATE_LIMITED || error->code == WMQ__ERROR_CODE__UNAVAILABLE)) {
    // Nothing was stored: try again later.
    print_error(error_name(error->code), error->detail);
    send->state = SEND_WAITING;
    send->due_at = now_ms() + RETRY_AFTER_MS;
  } else if (send) {
    // Refused for good (NOT_MEMBER, UNKNOWN_GROUP, TOO_LARGE, ...): repeating cannot help.
    print_rejected(error_name(error->code), send->text);
    outbox_remove(&dev->outbox, send);
  } else {
    print_error(error_name(error->code), error->detail);
  }
}

static const char *content_kind(const Wmq__Message *message) {
  if (message->recalled || !message->content) return "recalled";
  switch (message->content->body_case) {
  case WMQ__CONTENT__BODY_TEXT: return "text";
  case WMQ__CONTENT__BODY_MEDIA: return "media";
  case WMQ__CONTENT__BODY_LOCATION: return "location";
  case WMQ__CONTENT__BODY_CUSTOM: return "custom";
  case WMQ__CONTENT__BODY_SYSTEM: return "system";
  default: return "unknown";
  }
}

static void on_chat_message(struct device *dev, const Wmq__Message *message) {
  if (seen_before(&dev->seen, message->conversation, message->seq)) return;
  const char *kind = content_kind(message);
  if (strcmp(kind, "text") == 0) {
    print_message(message->conversation, message->seq, message->sender, message->content->text);
    dev->texts_shown++;
  } else {
    print_other(message->conversation, message->seq, message->sender, kind);
  }
}

static void on_message(struct mosquitto *mosq, void *context, const struct mosquitto_message *arrived) {
  (void)mosq;
  struct device *dev = context;
  dev->last_arrival = now_ms();
  Wmq__Downlink *downlink = wmq__downlink__unpack(NULL, (size_t)arrived->payloadlen, arrived->payload);
  if (!downlink) {
    fprintf(stderr, "wmq-device: undecodable downlink on %s (%d bytes)\n", arrived->topic, arrived->payloadlen);
    return;
  }
  switch (downlink->event_case) {
  case WMQ__DOWNLINK__EVENT_SEND_ACK: on_send_ack(dev, downlink->send_ack); break;
  case WMQ__DOWNLINK__EVENT_ERROR: on_error(dev, downlink->ref, downlink->error); break;
  case WMQ__DOWNLINK__EVENT_MESSAGE: on_chat_message(dev, downlink->message); break;
  default: break;  // receipts, typing, groups, contacts: not shown by this client
  }
  wmq__downlink__free_unpacked(downlink, NULL);
}

// ---- the connection ----

static void on_connect(struct mosquitto *mosq, void *context, int rc) {
  (void)mosq;
  struct device *dev = context;
  dev->last_arrival = now_ms();
  if (rc == 0) {
    dev->link = LINK_UP;
    dev->link_since = dev->last_arrival;
    dev->backoff_ms = RECONNECT_MIN_MS;
    print_connected();
  } else if (rc == 3) {
    dev->lost = "CONNACK 3: server unavailable";  // worth another try later
  } else {
    // 1 protocol, 2 not a device id, 4 bad login or token, 5 device bound to another user.
    dev->refused = rc;
  }
}

static void on_disconnect(struct mosquitto *mosq, void *context, int rc) {
  (void)mosq;
  struct device *dev = context;
  if (!dev->lost) dev->lost = rc == MOSQ_ERR_SUCCESS ? "closed" : describe(rc);
}

static void on_publish(struct mosquitto *mosq, void *context, int mid) {
  (void)mosq;
  (void)mid;
  ((struct device *)context)->last_arrival = now_ms();  // a PUBACK: the link is alive
}

// A fresh libmosquitto client for the next connection (see the top of this file).
static void reset_client(struct device *dev) {
  if (dev->mosq) {
    mosquitto_reinitialise(dev->mosq, dev->options.device, false, dev);
  } else {
    dev->mosq = mosquitto_new(dev->options.device, false, dev);  // clean session false (DESIGN 8)
    if (!dev->mosq) {
      perror("wmq-device: mosquitto_new");
      exit(1);
    }
  }
  mosquitto_int_option(dev->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_username_pw_set(dev->mosq, dev->options.login, dev->options.token);
  mosquitto_connect_callback_set(dev->mosq, on_connect);
  mosquitto_disconnect_callback_set(dev->mosq, on_disconnect);
  mosquitto_message_callback_set(dev->mosq, on_message);
  mosquitto_publish_callback_set(dev->mosq, on_publish);
}

static void connection_lost(struct device *dev, const char *reason) {
  bool was_up = dev->link == LINK_UP;
  dev->link = LINK_DOWN;
  dev->lost = NULL;
  reset_client(dev);  // closes the socket now
  outbox_requeue(&dev->outbox);
  int delay = dev->backoff_ms / 2 + (int)(random() % (dev->backoff_ms / 2 + 1));
  dev->retry_at = now_ms() + delay;
  dev->backoff_ms = dev->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : dev->backoff_ms * 2;
  if (was_up) print_disconnected();
  fprintf(stderr, "wmq-device: connection lost (%s); %u unacknowledged send(s) wait in the outbox; next attempt in %d ms\n",
          reason, outbox_pending(&dev->outbox), delay);
}

static void connect_now(struct device *dev) {
  dev->link = LINK_CONNECTING;
  dev->link_since = now_ms();
  // Non-blocking: the TCP connect completes in the loop, which keeps reading input meanwhile.
  int rc = mosquitto_connect_async(dev->mosq, dev->options.host, dev->options.port, dev->options.keepalive);
  if (rc != MOSQ_ERR_SUCCESS) connection_lost(dev, describe(rc));
}

// Checks the bounds a connection must keep; true when it is found dead.
static bool found_dead(struct device *dev, int64_t now) {
  if (dev->link == LINK_CONNECTING && now - dev->link_since > CONNECT_TIMEOUT_MS) {
    connection_lost(dev, "no CONNACK in time");
    return true;
  }
  int64_t oldest = outbox_oldest_published(&dev->outbox);
  int64_t since = oldest > dev->last_arrival ? oldest : dev->last_arrival;
  if (dev->link == LINK_UP && oldest >= 0 && now - since > REPLY_TIMEOUT_MS) {
    connection_lost(dev, "a send went unanswered");
    return true;
  }
  return false;
}

// ---- the loop ----

// Done when nothing is left to send and, with --count, enough was shown; with no input at all and
// no --count, the client listens until it is stopped.
static bool finished(const struct device *dev) {
  const struct options *o = &dev->options;
  if (!outbox_empty(&dev->outbox) || dev->next_send_arg < o->send_count) return false;
  if (o->count > 0) return dev->texts_shown >= o->count;
  bool has_input = o->send_count > 0 || o->read_stdin;
  return has_input && !dev->stdin_open;
}

static void serve_socket(struct device *dev, short events) {
  int rc = MOSQ_ERR_SUCCESS;
  if (events & (POLLIN | POLLERR | POLLHUP)) rc = mosquitto_loop_read(dev->mosq, 1);
  if (rc == MOSQ_ERR_SUCCESS && (events & POLLOUT)) rc = mosquitto_loop_write(dev->mosq, 1);
  if (rc != MOSQ_ERR_SUCCESS && !dev->lost) dev->lost = describe(rc);
}

static int run(struct device *dev) {
  while (!stopping && !finished(dev)) {
    int64_t now = now_ms();
    if (dev->refused) {
      fprintf(stderr, "wmq-device: connection refused (CONNACK %d: %s)\n", dev->refused, mosquitto_connack_string(dev->refused));
      return 1;
    }
    if (dev->lost) connection_lost(dev, dev->lost);
    take_input(dev);
    if (dev->link == LINK_DOWN && now >= dev->retry_at) connect_now(dev);
    if (dev->link != LINK_DOWN && found_dead(dev, now)) continue;
    if (dev->link == LINK_UP) publish_waiting(dev);
    if (dev->lost) continue;

    struct pollfd fds[2];
    nfds_t count = 0;
    int fd = dev->link == LINK_DOWN ? -1 : mosquitto_socket(dev->mosq);
    if (fd >= 0) {
      fds[count++] = (struct pollfd){.fd = fd, .events = POLLIN | (mosquitto_want_write(dev->mosq) ? POLLOUT : 0)};
    }
    bool reading = dev->stdin_open && !outbox_full(&dev->outbox);
    if (reading) fds[count++] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
    int64_t wait = TICK_MS;
    if (dev->link == LINK_DOWN && dev->retry_at - now < wait) wait = dev->retry_at - now;
    if (poll(fds, count, (int)(wait > 0 ? wait : 0)) < 0 && errno != EINTR) {
      perror("wmq-device: poll");
      return 1;
    }
    if (fd >= 0) {
      serve_socket(dev, fds[0].revents);
      // Keepalive: PINGREQ when idle, and the link closed when its PINGRESP does not come.
      int rc = mosquitto_loop_misc(dev->mosq);
      if (rc != MOSQ_ERR_SUCCESS && !dev->lost) dev->lost = describe(rc);
    }
    if (reading && fds[count - 1].revents) read_stdin(dev);
  }
  unsigned pending = outbox_pending(&dev->outbox) + (dev->options.send_count - dev->next_send_arg);
  if (pending > 0) {  // stopped by a signal
    fprintf(stderr, "wmq-device: stopped with %u send(s) not acknowledged\n", pending);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  static struct device dev;  // the outbox and buffers live here, not on the heap
  if (!parse_options(argc, argv, &dev.options)) return 2;
  dev.stdin_open = dev.options.read_stdin;
  dev.backoff_ms = RECONNECT_MIN_MS;
  unsigned seed;
  random_bytes(&seed, sizeof seed);
  srandom(seed);
  random_bytes(&dev.next_ref, sizeof dev.next_ref);  // replies to a previous run may still be queued

  struct sigaction action = {.sa_handler = stop};
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);
  signal(SIGPIPE, SIG_IGN);  // a write to a reset connection is an error to handle, not a death

  mosquitto_lib_init();
  reset_client(&dev);
  int status = run(&dev);
  if (dev.link == LINK_UP) {
    mosquitto_disconnect(dev.mosq);  // the session stays (clean=false); DISCONNECT only ends this connection
    mosquitto_loop_write(dev.mosq, 1);
  }
  mosquitto_destroy(dev.mosq);
  mosquitto_lib_cleanup();
  return status;
}
