// The S3 server of the bench (s3rver), in a process of its own: in the bench's process it would share one event
// loop with the clients being timed, and a proxy in between would copy every byte once more.
import { createS3rver } from '../../test/helpers/s3rver';

const server = createS3rver({
  port: Number(process.env.PORT),
  address: '127.0.0.1',
  directory: process.env.BENCH_DIR!,
  silent: true,
  configureBuckets: [{ name: process.env.BENCH_BUCKET! }],
});
server.run().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
process.once('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
