/**
 * Where a client on this machine reaches a server listening on `host`:`port`: a wildcard listen
 * address means this machine, and an IPv6 literal needs brackets in a URL.
 */
export function clientUrl(host: string, port: number): string {
  const name = ['0.0.0.0', '::', ''].includes(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}
