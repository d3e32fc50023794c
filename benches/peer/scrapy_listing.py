"""Scrapy's side of `cargo bench --bench table`: the same tag listings as
stackcrawl crawls, from the same fake site, into JSON lines with the same
fields (numbers exact from the stats items' titles where the page has them,
else the abbreviated text read as 1.2k -> 1200, tags, excerpt, author, time).

Usage: python scrapy_listing.py BASE_URL TAGS PAGES PAGESIZE RATE OUT [autothrottle]
  TAGS is comma-separated; RATE (requests/s) sets DOWNLOAD_DELAY = 1/RATE,
  not randomised; 8 requests in flight, as in the issue's table; robots.txt
  obeyed. With `autothrottle`, AutoThrottle adapts the delay (its start
  delay is 1/RATE). Prints Scrapy's stats as one JSON line on stdout.
"""

import json
import re
import sys

import scrapy
from scrapy.crawler import CrawlerProcess

DIGITS = re.compile(r"[\d,]+")


def number(title, text):
    """The exact figure from a title like "Score of 1,234", else the text."""
    if title:
        m = DIGITS.search(title)
        if m:
            return int(m.group(0).replace(",", ""))
    text = (text or "").strip().lower()
    scale = 1
    if text.endswith("k"):
        scale, text = 1_000, text[:-1]
    elif text.endswith("m"):
        scale, text = 1_000_000, text[:-1]
    try:
        return int(float(text) * scale)
    except ValueError:
        return None


class Listing(scrapy.Spider):
    name = "listing"

    def __init__(self, base, tags, pages, pagesize, **kw):
        super().__init__(**kw)
        self.base, self.tags = base, tags
        self.pages, self.pagesize = pages, pagesize

    async def start(self):
        for tag in self.tags:
            for page in range(1, self.pages + 1):
                url = (f"{self.base}/questions/tagged/{tag}"
                       f"?tab=Newest&page={page}&pagesize={self.pagesize}")
                yield scrapy.Request(url, cb_kwargs={"tag": tag, "page": page})

    def parse(self, response, tag, page):
        for s in response.css("div.s-post-summary"):
            stats = s.css("div.s-post-summary--stats-item")
            figures = [
                number(i.attrib.get("title"),
                       i.css(".s-post-summary--stats-item-number::text").get())
                for i in stats
            ]
            if len(figures) < 3:
                continue
            link = s.css("h3 a")
            yield {
                "question_id": int(s.attrib["data-post-id"]),
                "title": link.css("::text").get("").strip(),
                "url": response.urljoin(link.attrib.get("href", "")),
                "votes": figures[0],
                "answers": number(None, stats[1].css(
                    ".s-post-summary--stats-item-number::text").get()),
                "views": figures[2],
                "tags": s.css("a.post-tag::text").getall(),
                "excerpt": " ".join(
                    s.css(".s-post-summary--content-excerpt::text").get("").split()),
                "author": s.css(".s-user-card--link a span::text").get(),
                "asked": s.css(".s-user-card--time span::attr(title)").get(),
                "tag": tag,
                "page": page,
            }


def main():
    base, tags, pages, pagesize, rate, out = sys.argv[1:7]
    autothrottle = "autothrottle" in sys.argv[7:]
    delay = 1.0 / float(rate)
    process = CrawlerProcess({
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": 8,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "DOWNLOAD_DELAY": delay,
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "AUTOTHROTTLE_ENABLED": autothrottle,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 8.0,
        "FEEDS": {out: {"format": "jsonlines", "overwrite": True}},
        "LOG_LEVEL": "ERROR",
        "TELNETCONSOLE_ENABLED": False,
    })
    crawler = process.create_crawler(Listing)
    process.crawl(crawler, base=base, tags=tags.split(","), pages=int(pages),
                  pagesize=int(pagesize))
    process.start()
    stats = {k: v for k, v in crawler.stats.get_stats().items()
             if isinstance(v, (int, float))}
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
