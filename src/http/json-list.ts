import type { Response } from 'express';
import type { Page } from '../db';
import { untilDrained } from '../streams';

/**
 * Answers `{"<field>": [...]}` from pages of items. A listing that fits in one page goes out as any JSON response
 * (with its ETag, so If-None-Match gets 304); a longer one is written page by page as the client reads it, so a
 * table of any size is listed in flat memory: one page at a time, since each page says whether another follows.
 * The first page is read before anything is written: an error there (no such customer, the database away) is still
 * answered as an error. Later, the connection is cut.
 */
export async function sendJsonList<T>(res: Response, field: string, pages: AsyncGenerator<Page<T>>): Promise<void> {
  try {
    const first = await pages.next();
    if (first.done || !first.value.more) {
      res.json({ [field]: first.done ? [] : first.value.items });
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
    for (let page: IteratorResult<Page<T>> = first; !page.done && !res.destroyed; page = await pages.next()) await write(page.value.items);
    res.end(']}');
  } finally {
    // A client gone mid-listing: no more pages are read for it.
    await pages.return(undefined);
  }
}
