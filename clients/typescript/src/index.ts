// @integration-service/client: a typed client of the Integration Service (types generated from its
// OpenAPI document), the live events with resume, login helpers, webhook verification.
export { createClient, IntegrationClient } from './client.ts';
export type {
  ActorDetail, ActorList, AddChat, BatchMessage, Chat, ClientOptions, ClusterView, Connection, ConnectionPage, ConnectionStatus,
  CreateConnection, EventLogPage, LiveEvent, Media, Message, MessagePage, QrLogin, SendMessage, SendMessageInput, TokenSource, Upload,
  UploadOptions, Webhook as WebhookEndpoint, WebhookDelivery,
} from './client.ts';
export { ApiError, NetworkError, type ErrorBody } from './errors.ts';
export { EventStream, type EventStreamOptions, type StreamState, type WebSocketConstructor, type WebSocketLike } from './events.ts';
export { connectBot, LoginError, loginWithPhone, loginWithQr, waitForConnection, type PhoneLoginOptions, type QrLoginOptions, type WaitOptions } from './login.ts';
export { verifyWebhook, Webhook, WebhookVerificationError, type WebhookPayload } from './webhooks.ts';
export type { components, paths } from './generated/openapi.ts';
