// The command line of wmq-device (README.md beside the Makefile lists every option).
#ifndef WMQ_OPTIONS_H
#define WMQ_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_SEND_ARGS 64

struct options {
  const char *host;
  int port;
  const char *device;      // base-36 device id: the MQTT client id (DESIGN 8)
  const char *login;       // MQTT username
  const char *token;       // MQTT password: an access token
  uint64_t group;          // send to this group ...
  uint64_t user;           // ... or to this user (0: not given)
  const char *sends[MAX_SEND_ARGS];
  unsigned send_count;
  bool read_stdin;         // each line of standard input is a send too
  unsigned long count;     // exit after this many text messages (0: no limit)
  int keepalive;           // seconds
};

// Fills `options` from argv; on a usage error prints why and the usage, and returns false.
bool parse_options(int argc, char **argv, struct options *options);

#endif
