// Loaded by a test into a service process (NODE_OPTIONS=--require ...): once the file FAIL_FSYNC_WHEN names exists,
// every fsync fails with EIO, as on a disk that is failing. The real fsync runs until then.
const fs = require('node:fs');

const fsyncSync = fs.fsyncSync;
fs.fsyncSync = function failingFsyncSync(fd) {
  if (fs.existsSync(process.env.FAIL_FSYNC_WHEN)) {
    throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', errno: -5, syscall: 'fsync' });
  }
  return fsyncSync.call(this, fd);
};
