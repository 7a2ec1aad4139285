import { contentMatchesType, DEFAULT_ALLOWED_TYPES, downloadName, isInlineSafe, resolveMimeType } from '../../src/documents/file-types';
import { cleanFileName, storedExtension } from '../../src/documents/file-name';
import { files } from '../helpers/files';

describe('resolveMimeType', () => {
  test.each([
    ['application/pdf', 'a.pdf', 'application/pdf'],
    ['Application/PDF; charset=binary', 'a.pdf', 'application/pdf'],
    ['application/octet-stream', 'mail.msg', 'application/vnd.ms-outlook'],
    ['', 'message.eml', 'message/rfc822'],
    [undefined, 'photo.HEIC', 'image/heic'],
    ['application/octet-stream', 'mystery', 'application/octet-stream'],
    ['image/jpg', 'a.jpg', 'image/jpeg'],
    ['application/x-zip-compressed', 'a.zip', 'application/zip'],
    ['application/vnd.ms-excel', 'export.csv', 'text/csv'],
    ['application/vnd.ms-excel', 'budget.xls', 'application/vnd.ms-excel'],
    ['text/html', 'invoice.pdf', 'application/pdf'],
    ['text/plain', 'invoice.bat', 'application/x-msdownload'],
    ['application/pdf', 'statement.html', 'text/html'],
    ['text/plain', 'README', 'text/plain'],
    ['application/pdf', 'offer.final', 'application/pdf'],
    ['image/jpeg', 'photo.jfif', 'image/jpeg'],
  ])('%j for %s is %s', (declared, name, expected) => {
    expect(resolveMimeType(declared, name)).toBe(expected);
  });
});

describe('contentMatchesType', () => {
  const ole2 = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0]);
  test.each([
    ['application/pdf', files.pdf(), true],
    ['application/pdf', Buffer.concat([Buffer.alloc(100, 0x20), Buffer.from('%PDF-1.3')]), true],
    ['application/pdf', files.exe(), false],
    ['image/png', files.png(), true],
    ['image/png', files.pdf(), false],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', files.docx(), true],
    ['application/msword', ole2, true],
    ['application/msword', files.docx(), false],
    ['image/heic', Buffer.from('\0\0\0\x18ftypheic\0\0\0\0', 'latin1'), true],
    ['image/webp', Buffer.from('RIFF\x10\0\0\0WEBPVP8 ', 'latin1'), true],
    ['image/tiff', Buffer.from('II*\0\x08\0\0\0', 'latin1'), true],
    ['application/rtf', Buffer.from('{\\rtf1\\ansi hi}'), true],
    ['text/plain', Buffer.from('plain words'), true],
    ['text/csv', files.exe(), false],
    ['text/plain', Buffer.from([0xff, 0xfe, 0x41, 0x00]), true],
    ['video/mp4', files.exe(), true],
  ])('%s with %j bytes: %s', (type, head, expected) => {
    expect(contentMatchesType(type, head)).toBe(expected);
  });

  test('inline only for types a browser shows without running anything', () => {
    expect(['application/pdf', 'image/png', 'text/plain'].every(isInlineSafe)).toBe(true);
    expect(['text/html', 'image/svg+xml', 'text/csv', 'application/zip'].some(isInlineSafe)).toBe(false);
  });
});

describe('file names', () => {
  test.each([
    ['report.pdf', 'report.pdf'],
    ['C:\\Users\\ann\\scan.png', 'scan.png'],
    ['../../etc/passwd', 'passwd'],
    ['bad\r\nname\u0000.txt', 'badname.txt'],
    // Shown as "invoiceexe.pdf" with the override in place.
    ['invoice\u202efdp.exe', 'invoicefdp.exe'],
    ['\u2067report\u2069.pdf', 'report.pdf'],
    ['c1\u0085\u009bname.pdf', 'c1name.pdf'],
    ['a.pdf. ', 'a.pdf'],
    ['notes.txt...', 'notes.txt'],
    ['...', 'file'],
    ['two\u2028lines\u2029.pdf', 'two lines .pdf'],
    ['a.pdf\u200d', 'a.pdf'],
    ['zero\u200bwidth\u2060\ufeff.pdf', 'zerowidth.pdf'],
    // Joiners stay: "می‌خواهم" needs its ZWNJ, and 👩‍💻 is one emoji by its ZWJ.
    ['\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u{1f469}\u200d\u{1f4bb}.pdf', '\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u{1f469}\u200d\u{1f4bb}.pdf'],
    ['   ', 'file'],
    [undefined, 'file'],
  ])('%j is kept as %j', (raw, clean) => {
    expect(cleanFileName(raw)).toBe(clean);
  });

  test('long names are cut to 255 characters without splitting a character, keeping their extension', () => {
    const name = cleanFileName(`${'😀'.repeat(300)}.pdf`);
    expect(Array.from(name)).toHaveLength(255);
    expect(name).toBe(`${'😀'.repeat(251)}.pdf`);
    const plain = cleanFileName('a'.repeat(300));
    expect(plain).toBe('a'.repeat(255));
    // A cut that lands after a dot or a space does not leave it at the end.
    expect(cleanFileName(`${'x'.repeat(254)} ${'y'.repeat(10)}`)).toBe('x'.repeat(254));
    expect(cleanFileName(`${'x'.repeat(254)}.${'y'.repeat(20)}`)).toBe('x'.repeat(254));
    expect(cleanFileName(`${'x'.repeat(250)}. ${'y'.repeat(20)}.pdf`)).toBe(`${'x'.repeat(250)}.pdf`);
  });

  test('runs of dots, spaces and joiners stay inside a name and go from its end, however long', () => {
    expect(cleanFileName(`a${'. '.repeat(8000)}b.pdf`)).toBe('a.pdf');
    expect(cleanFileName(`a${'. '.repeat(100)}b.pdf`)).toBe(`a${'. '.repeat(100)}b.pdf`);
    expect(cleanFileName(`report${'.'.repeat(50_000)} \u200d`)).toBe('report');
    expect(cleanFileName('\u200c'.repeat(50_000))).toBe('file');
  });

  test('stored names keep a plain extension only', () => {
    expect(storedExtension('Scan.PDF')).toBe('.pdf');
    expect(storedExtension('archive.tar.gz')).toBe('.gz');
    expect(storedExtension('no-extension')).toBe('');
    expect(storedExtension('weird.<script>')).toBe('');
  });
});

describe('downloadName', () => {
  const allowed = new Set(DEFAULT_ALLOWED_TYPES);
  test.each([
    ['contract.pdf', 'application/pdf', 'contract.pdf'],
    ['scan.png', 'image/jpeg', 'scan.png'],
    ['cleanup.ps1', 'text/plain', 'cleanup.ps1.txt'],
    ['invoice.bat', 'text/plain', 'invoice.bat.txt'],
    ['notes v1.2', 'text/plain', 'notes v1.2.txt'],
    ['mail', 'message/rfc822', 'mail.eml'],
    ['blob', 'application/octet-stream', 'blob'],
  ])('%s stored as %s downloads as %s', (name, type, expected) => {
    expect(downloadName(name, type, allowed)).toBe(expected);
  });
});
