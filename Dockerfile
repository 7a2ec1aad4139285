# CRM document storage: docker build -t crm-documents .
# Node 22 LTS (Node 20 is end of life). Debian slim: glibc, no build tools needed (no native production dependency).

# --- build: dev dependencies and the TypeScript compiler ----------------------------------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, compiled code and migrations only ------------------------------------------
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
# Read at startup from ../../migrations relative to dist/db/migrate.js, i.e. /app/migrations.
COPY migrations ./migrations
# The code stays root-owned (read-only to the service); only these two are writable. UPLOAD_DIR defaults to
# ./uploads and PGLITE_DATA_DIR to ./data/pglite, both under /app: mount volumes here to keep them across containers.
RUN mkdir -p /app/uploads /app/data && chown node:node /app/uploads /app/data
USER node
EXPOSE 3000
# Readiness: database answers, migrations applied, storage reachable. No curl in slim images: node's fetch.
# The start period covers migrations, which run before the server listens.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/ready', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form, not npm start: node is PID 1 and receives SIGTERM itself; the server drains for SHUTDOWN_TIMEOUT (25 s)
# and exits 0. Give `docker stop` more than its default 10 s: docker stop -t 30, or docker run --stop-timeout 30.
# --initial-old-space-size: the same node flags as `npm start`; README "Performance" says why.
CMD ["node", "--initial-old-space-size=64", "dist/server.js"]
