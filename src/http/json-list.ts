import type { Response } from 'express';
import { untilDrained } from '../streams';

/**
 * Answers `{"<field>": [...]}` from pages of items. A listing that fits in one page goes out as any JSON response
 * (with its ETag, so If-None-Match gets 304); a longer one is written page by page as the client reads it, so a
 * table of any size is listed in flat memory. The first two pages are read before anything is written: an error
 * there (no such customer, the database away) is still answered as an error. Later, the connection is cut.
 */
export async function sendJsonList<T>(res: Response, field: string, pages: AsyncGenerator<T[]>): Promise<void> {
  try {
    const first = await pages.next();
    const second = first.done ? first : await pages.next();
    if (second.done) {
      res.json({ [field]: first.done ? [] : first.value });
      return;
    }
    res.type('application/json');
    let written = 0;
    const write = async (items: T[]) => {
      if (items.length === 0) return;
      const json = items.map((item) => JSON.stringify(item)).join(',');
      if (!res.write(written === 0 ? json : `,${json}`)) await untilDrained(res);
      written += items.length;
    };
    res.write(`{${JSON.stringify(field)}:[`);
    await write(first.value);
    for (let page: IteratorResult<T[]> = second; !page.done && !res.destroyed; page = await pages.next()) await write(page.value);
    res.end(']}');
  } finally {
    // A client gone mid-listing: no more pages are read for it.
    await pages.return(undefined);
  }
}
