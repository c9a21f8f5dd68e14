import { InProcessQueue } from '../../src/jobs/in-process-queue.ts';
import { jobQueueContract } from './queue.contract.ts';

jobQueueContract(
  'InProcessQueue',
  () => new InProcessQueue<string, string>({ concurrency: 1, maxWaiting: 1, jobTimeoutSeconds: 1 }),
);
