// BullMQ's quick start and more (ops/app-check): priorities, delays, retries, bulk adds, a flow, pause.
import { Queue, Worker, QueueEvents, FlowProducer } from 'bullmq';
import IORedis from 'ioredis';

const connection = new IORedis({ port: Number(process.argv[2]), maxRetriesPerRequest: null });
await connection.flushall();
const queue = new Queue('q', { connection });
const results = [];
const worker = new Worker('q', async job => {
  if (job.name === 'fail' && job.attemptsMade < 1) throw new Error('boom');
  return (job.data.x ?? 0) * 2;
}, { connection });
const events = new QueueEvents('q', { connection });
await events.waitUntilReady();
const done = new Promise(resolve => {
  let n = 0;
  worker.on('completed', (job, value) => { results.push([job.name, value]); if (++n === 8) resolve(); });
});
await queue.add('a', { x: 1 });
await queue.add('b', { x: 2 }, { priority: 3 });
await queue.add('c', { x: 3 }, { delay: 300 });
await queue.add('fail', { x: 4 }, { attempts: 2, backoff: { type: 'fixed', delay: 100 } });
await queue.addBulk([{ name: 'd', data: { x: 5 } }, { name: 'e', data: { x: 6 } }]);
const flow = new FlowProducer({ connection });
await flow.add({ name: 'parent', queueName: 'q', data: { x: 10 },
                 children: [{ name: 'child', queueName: 'q', data: { x: 7 } }] });
await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 15000))]);
const counts = await queue.getJobCounts();
await queue.pause();
const paused = await queue.isPaused();
await queue.resume();
await queue.obliterate({ force: true });
console.log(JSON.stringify({ results: results.sort(), counts, paused }));
await worker.close(); await events.close(); await flow.close(); await queue.close(); await connection.quit();
