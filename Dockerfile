# syntax=docker/dockerfile:1.7
# Multi-stage: build TypeScript and the console with dev dependencies, ship only dist + prod deps.
# Node 22 LTS (supported until April 2027); the tests in this repository run on Node 20 as well, and
# the code uses nothing that differs between them (README: Node versions). Checked by
# tests/ops/dockerfile.test.ts: same Node in every stage, non-root, no dev dependencies, a healthcheck.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# postinstall patches postgres.js (ops/patches/postgres-queue.mjs, postgres-nextwrite.mjs, postgres-binary-results.mjs, postgres-binary-params.mjs); npm ci fails without them.
COPY ops/patches ./ops/patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY machines ./machines
RUN npm run build && npm run build:console

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# postinstall patches postgres.js (ops/patches/postgres-queue.mjs, postgres-nextwrite.mjs, postgres-binary-results.mjs, postgres-binary-params.mjs); npm ci fails without them.
COPY ops/patches ./ops/patches
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
ENV NODE_ENV=production PORT=8080 DATA_DIR=/var/lib/integration-service
WORKDIR /app
# 0700: the daemon refuses a DATA_DIR that group/others can reach (embedded database, secrets).
RUN install -d -m 0700 -o node -g node /var/lib/integration-service
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/src/console/dist ./dist/src/console/dist
# Compiled modules find package.json and migrations/ two levels above dist/src/*/: i.e. in dist/.
COPY --chown=node:node migrations ./dist/migrations
COPY --chown=node:node package.json ./dist/package.json
COPY --chown=node:node package.json ./
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# Node gets SIGTERM directly (no shell wrapper) so graceful shutdown runs within its 10 s.
CMD ["node", "dist/src/main.js"]
