// The output lines (print.h).
#include "print.h"

#include <inttypes.h>
#include <stdio.h>

static void put_escaped(const char *text) {
  for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
    switch (*c) {
    case '\\': fputs("\\\\", stdout); break;
    case '\n': fputs("\\n", stdout); break;
    case '\r': fputs("\\r", stdout); break;
    case '\t': fputs("\\t", stdout); break;
    default:
      if (*c < 0x20 || *c == 0x7f) printf("\\x%02x", *c);
      else putchar(*c);  // UTF-8 passes through as it is
    }
  }
}

// Every line is flushed at once: a reader on a pipe sees each event when it happens.
static void end_line(void) {
  putchar('\n');
  fflush(stdout);
}

void print_connected(void) {
  fputs("connected", stdout);
  end_line();
}

void print_disconnected(void) {
  fputs("disconnected", stdout);
  end_line();
}

void print_ack(uint64_t conversation, uint64_t seq, const char *text) {
  printf("ack %" PRIu64 " %" PRIu64 " ", conversation, seq);
  put_escaped(text);
  end_line();
}

void print_message(uint64_t conversation, uint64_t seq, uint64_t sender, const char *text) {
  printf("msg %" PRIu64 " %" PRIu64 " %" PRIu64 " ", conversation, seq, sender);
  put_escaped(text);
  end_line();
}

void print_other(uint64_t conversation, uint64_t seq, uint64_t sender, const char *kind) {
  printf("other %" PRIu64 " %" PRIu64 " %" PRIu64 " %s", conversation, seq, sender, kind);
  end_line();
}

void print_rejected(const char *code, const char *text) {
  printf("rejected %s ", code);
  put_escaped(text);
  end_line();
}

void print_error(const char *code, const char *detail) {
  printf("error %s ", code);
  put_escaped(detail);
  end_line();
}
