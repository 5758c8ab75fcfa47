// The command line of wmq-device.
#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// MQTT keepalive, seconds; the same default as the TypeScript SDK, for the same reasons
// (DESIGN §Weak networks). The keepalive does three jobs. (1) It keeps NAT and firewall mappings
// open: carrier NATs on 2G/3G forget an idle TCP flow after a few minutes (WeChat's Mars probes
// upward from 3.5 min because less is always safe); 60 s stays inside all of them for a 2-byte
// PINGREQ and a 2-byte PINGRESP a minute, about 100 bytes with TCP/IP headers, a 0.04 s burst on
// a 20 kbit/s link. (2) It lets the broker notice a vanished device: aedes drops it after
// 1.5 x keepalive, so its session and presence are settled within 90 s. (3) It lets the device
// notice a dead link, which it does slowly (libmosquitto: 1.5-2 x keepalive), so the client also
// bounds every send (REPLY_TIMEOUT_MS in device.c). Longer (Mars: 240-600 s) saves radio wake-ups
// (on 2G each one keeps the radio at high power for seconds) but risks a NAT forgetting the flow:
// raise it only where the network's NAT timeout is known.
#define DEFAULT_KEEPALIVE 60

static const char usage[] =
  "usage: wmq-device --device ID --login LOGIN --token TOKEN [--group ID | --user ID]\n"
  "                  [--send TEXT]... [--stdin] [--count N] [--host HOST] [--port PORT] [--keepalive S]\n"
  "  --host HOST      broker address (default 127.0.0.1)\n"
  "  --port PORT      broker MQTT port (default 1883)\n"
  "  --device ID      this device's id, 1-11 base-36 characters (0-9 a-z, no leading 0): the MQTT client id\n"
  "  --login LOGIN    the user's login (MQTT username)\n"
  "  --token TOKEN    an access token (npm run admin -- token LOGIN), the MQTT password; default $WMQ_TOKEN\n"
  "  --group ID       send to this group (its decimal id, the conversation in msg and ack lines)\n"
  "  --user ID        send to this user (decimal id)\n"
  "  --send TEXT      send TEXT; repeatable, sent in order\n"
  "  --stdin          send each line of standard input too\n"
  "  --count N        exit after printing N received text messages, once every send is acknowledged\n"
  "  --keepalive S    MQTT keepalive in seconds (default 60, argued in options.c)\n";

// DESIGN §Topics: ids are base-36 without leading zeros, at most 11 characters (2^53).
static bool is_device_id(const char *text) {
  size_t length = strlen(text);
  if (length == 0 || length > 11 || text[0] == '0') return false;
  return strspn(text, "0123456789abcdefghijklmnopqrstuvwxyz") == length;
}

static bool parse_number(const char *text, unsigned long long max, unsigned long long *value) {
  char *end;
  if (text[0] < '0' || text[0] > '9') return false;
  *value = strtoull(text, &end, 10);
  return *end == '\0' && *value <= max;
}

static bool fail(const char *why, const char *what) {
  if (why[0]) fprintf(stderr, "wmq-device: %s%s\n", why, what);
  fputs(usage, stderr);
  return false;
}

bool parse_options(int argc, char **argv, struct options *o) {
  static const struct option long_options[] = {
    {"host", required_argument, 0, 'h'},  {"port", required_argument, 0, 'p'},
    {"device", required_argument, 0, 'd'}, {"login", required_argument, 0, 'l'},
    {"token", required_argument, 0, 't'}, {"group", required_argument, 0, 'g'},
    {"user", required_argument, 0, 'u'},  {"send", required_argument, 0, 's'},
    {"stdin", no_argument, 0, 'i'},       {"count", required_argument, 0, 'c'},
    {"keepalive", required_argument, 0, 'k'}, {"help", no_argument, 0, 'H'},
    {0, 0, 0, 0},
  };
  *o = (struct options){.host = "127.0.0.1", .port = 1883, .token = getenv("WMQ_TOKEN"), .keepalive = DEFAULT_KEEPALIVE};
  unsigned long long n;
  int c;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    switch (c) {
    case 'h': o->host = optarg; break;
    case 'p':
      if (!parse_number(optarg, 65535, &n) || n == 0) return fail("bad --port: ", optarg);
      o->port = (int)n;
      break;
    case 'd': o->device = optarg; break;
    case 'l': o->login = optarg; break;
    case 't': o->token = optarg; break;
    case 'g':
      if (!parse_number(optarg, UINT64_MAX, &n) || n == 0) return fail("bad --group: ", optarg);
      o->group = n;
      break;
    case 'u':
      if (!parse_number(optarg, UINT64_MAX, &n) || n == 0) return fail("bad --user: ", optarg);
      o->user = n;
      break;
    case 's':
      if (o->send_count == MAX_SEND_ARGS) return fail("too many --send (use --stdin)", "");
      o->sends[o->send_count++] = optarg;
      break;
    case 'i': o->read_stdin = true; break;
    case 'c':
      if (!parse_number(optarg, 1000000000, &n)) return fail("bad --count: ", optarg);
      o->count = (unsigned long)n;
      break;
    case 'k':
      // MQTT carries the keepalive in 16 bits; 0 would switch it off, and with it NAT upkeep.
      if (!parse_number(optarg, 65535, &n) || n < 5) return fail("bad --keepalive (5-65535 s): ", optarg);
      o->keepalive = (int)n;
      break;
    case 'H': fputs(usage, stdout); exit(0);
    default: return fail("", "");  // getopt said what was wrong
    }
  }
  if (optind < argc) return fail("unexpected argument: ", argv[optind]);
  if (!o->device || !is_device_id(o->device)) return fail("--device needs a base-36 device id", "");
  if (!o->login || !o->token) return fail("--login and --token (or WMQ_TOKEN) are required", "");
  if (o->group && o->user) return fail("give --group or --user, not both", "");
  if ((o->send_count || o->read_stdin) && !o->group && !o->user) return fail("sending needs --group or --user", "");
  return true;
}
