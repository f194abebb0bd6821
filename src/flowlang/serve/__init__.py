"""`flowlang serve DIR`: one long-running process that receives webhooks into a durable inbox, runs
flows on cron schedules, and shows a console of flows, jobs and errors. aiohttp.web serves it.

Modules: flows (the folder's flows and their triggers), signatures (webhook presets), inbox (SQLite,
committed before each answer), clock (real, frozen or accelerated time), runs (the thread that runs
jobs, in arrival order, per-flow concurrency), schedule (cron ticks), metrics (Prometheus), server
(the HTTP routes), console (the HTML pages and their actions), service (start and graceful stop)."""
