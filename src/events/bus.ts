import { EventEmitter } from 'node:events';

// In-process bus between the supervisor/delivery (producers) and the WebSocket plugin and the
// RabbitMQ `integration.events` publisher (consumers). Every event names its owner so that
// consumers can scope delivery to the caller who owns the resource.
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
