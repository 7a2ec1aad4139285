// The approach the service replaces: multer's memoryStorage, then writeFile (or a PutObject), and express.static;
// with S3, also a bare pipe of a GetObject to the response (the reference for downloads from S3).
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import express from 'express';
import multer from 'multer';

const dir = process.env.BENCH_DIR!;
const s3 = process.env.AWS_S3_ENDPOINT
  ? new S3Client({
      region: process.env.AWS_REGION,
      endpoint: process.env.AWS_S3_ENDPOINT,
      forcePathStyle: true,
      credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
    })
  : undefined;
const app = express();
app.post('/upload', multer({ storage: multer.memoryStorage(), limits: { fileSize: 2 * 1024 ** 3 } }).single('file'), async (req, res) => {
  const name = randomUUID();
  if (s3) await s3.send(new PutObjectCommand({ Bucket: process.env.AWS_S3_BUCKET_NAME, Key: name, Body: req.file!.buffer }));
  else await fs.writeFile(path.join(dir, name), req.file!.buffer);
  res.status(201).json({ name });
});
app.get('/s3/:name', async (req, res) => {
  const object = await s3!.send(new GetObjectCommand({ Bucket: process.env.AWS_S3_BUCKET_NAME, Key: req.params.name }));
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(object.ContentLength) });
  await pipeline(object.Body as Readable, res).catch(() => undefined);
});
app.use('/static', express.static(dir));
app.listen(Number(process.env.PORT), '127.0.0.1');
