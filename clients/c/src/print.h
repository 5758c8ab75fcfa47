// What wmq-device prints on standard output: one event per line, fields separated by one space,
// the free text (if any) last and escaped (\\ \n \r \t \xHH) so that a line is always one event.
// Ids and seqs are decimal. README.md lists the lines; diagnostics go to standard error.
#ifndef WMQ_PRINT_H
#define WMQ_PRINT_H

#include <stdint.h>

void print_connected(void);                                          // connected
void print_disconnected(void);                                       // disconnected
void print_ack(uint64_t conversation, uint64_t seq, const char *text); // ack <conversation> <seq> <text>
void print_message(uint64_t conversation, uint64_t seq, uint64_t sender, const char *text);  // msg ...
void print_other(uint64_t conversation, uint64_t seq, uint64_t sender, const char *kind);   // other ...
void print_rejected(const char *code, const char *text);              // rejected <CODE> <text>
void print_error(const char *code, const char *detail);               // error <CODE> <detail>

#endif
