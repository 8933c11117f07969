/* The floor under a whole `keyfob token NAME` process: a static C program that sends the
 * same two request lines keyfob sends (hello, token.get) to the agent's socket and waits for
 * the two reply lines, doing nothing else (no check of who listens, no JSON, no output).
 * bench/run measures it beside keyfob, so what keyfob adds over a process and one round trip
 * is seen apart from what keyfobd takes to answer a new connection.
 * Usage: floor-client SOCKET ACCOUNT */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  char req[512];
  int len = snprintf(req, sizeof req,
                     "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"hello\",\"params\":{\"version\":1,\"client\":\"keyfob\"}}\n"
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"token.get\",\"params\":{\"name\":\"%s\",\"min_ttl\":null,"
                     "\"id_token\":false,\"scopes\":[],\"audience\":null,\"wait\":false,\"claims\":false}}\n",
                     argv[2]);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (len <= 0 || len >= (int)sizeof req || strlen(argv[1]) >= sizeof addr.sun_path) return 2;
  strcpy(addr.sun_path, argv[1]);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) return 3;
  if (send(s, req, len, MSG_NOSIGNAL) != len) return 3;
  char buf[8192];
  int got = 0, lines = 0;
  while (lines < 2) {
    int n = recv(s, buf + got, sizeof buf - got, 0);
    if (n <= 0) return 3;
    for (int i = got; i < got + n; i++) lines += buf[i] == '\n';
    got += n;
    if (got == sizeof buf) got = 0;
  }
  /* A refused request (an error reply) is no floor. */
  return strstr(buf, "\"id\":1,\"result\"") ? 0 : 4;
}
