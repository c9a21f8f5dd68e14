import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * GET /metrics: Prometheus' text format, without an API key (as /healthz and /readyz), for a scraper
 * on the operator's network. Not for the public internet: it shows deployments, load and traffic.
 */
export async function metrics(request: FastifyRequest, reply: FastifyReply) {
  const { registry } = request.server.services.metrics;
  return reply.header('content-type', registry.contentType).send(await registry.metrics());
}
