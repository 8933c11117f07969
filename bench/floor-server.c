/* The floor under any server a whole `keyfob token` process could ask: a blocking C program
 * that accepts a connection, reads until the two request lines floor-client sends have
 * arrived, writes two fixed replies of the sizes keyfobd's are (hello, then a token), and
 * closes. No event loop, no JSON, no checks. bench/run measures floor-client against it
 * beside keyfobd, so what any server at all adds to a process is seen apart from what a
 * tokio, JSON-RPC or Keyfob server adds.
 * Usage: floor-server SOCKET */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (argc != 2 || strlen(argv[1]) >= sizeof addr.sun_path) return 2;
  strcpy(addr.sun_path, argv[1]);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(l, 128) != 0) return 3;
  const char *reply =
      "{\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"version\":1,\"daemon_version\":\"0.1.0\",\"pid\":1}}\n"
      "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"access_token\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
      "\"token_type\":\"Bearer\",\"expires_at\":1800000000,\"scopes\":[\"openid\",\"offline_access\"]}}\n";
  size_t len = strlen(reply);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    char buf[4096];
    int lines = 0;
    while (lines < 2) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
    }
    if (lines >= 2) (void)!send(c, reply, len, MSG_NOSIGNAL);
    close(c);
  }
}
