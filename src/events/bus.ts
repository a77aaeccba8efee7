import { EventEmitter } from 'node:events';

// In-process bus: connection.status and message.received events are raised here for listeners in
// this process (a WebSocket without the stored feed, tests). It stores nothing: every event a caller
// can see is written to the events table in the transaction of the change it reports (src/store),
// and the WebSocket (src/events/feed.ts), the RabbitMQ `integration.events` publisher and webhooks
// read it from there. Every event names its owner so that readers can scope it to the owner.
export interface LiveEvent {
  type: 'connection.status' | 'message.status' | 'message.received';
  owner: string;
  at: string; // ISO 8601
  data: unknown;
}

class Bus extends EventEmitter {
  publish(event: LiveEvent): void {
    this.emit('event', event);
  }

  subscribe(listener: (event: LiveEvent) => void): () => void {
    this.on('event', listener);
    return () => this.off('event', listener);
  }
}

export const bus = new Bus();
// One listener per open WebSocket: thousands of consoles are normal, not a leak.
bus.setMaxListeners(0);
