import { randomBytes } from 'node:crypto';

/** Small files that carry the real signature of their type, padded with random bytes. */
export const files = {
  pdf: (size = 4096) => Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(Math.max(0, size - 15)), Buffer.from('\n%%EOF')]),
  png: (size = 2048) => Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(size - 8)]),
  docx: (size = 2048) => Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), randomBytes(size - 4)]),
  text: (text = 'Call notes: renew contract in March.\n') => Buffer.from(text),
  /** The start of a Windows executable: MZ, then the NUL bytes every PE header has. */
  exe: () => Buffer.concat([Buffer.from('MZ\x90\x00\x03\x00\x00\x00\x04\x00', 'latin1'), Buffer.alloc(64)]),
};
