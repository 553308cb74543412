/**
 * ApiVersions (API key 18), versions 0-3.
 *
 * Version notes: v1 throttle time, v3 flexible request (client software name and version) and
 * feature tags in the response (Sluice reports none). v4 is not advertised.
 *
 * The advertised ranges come from the handler registry, so they always match what is
 * implemented. Two quirks live in the dispatcher, not here: the response header of ApiVersions is
 * always v0 (no tagged fields, even for v3), and a request with an unsupported ApiVersions version
 * gets a v0-layout response with UNSUPPORTED_VERSION and the supported range.
 */

import type {
  ApiVersionsRequest,
  ApiVersionsResponse,
} from '../../protocol/generated/api-versions.js';
import type { Handler } from './handler.js';

export interface AdvertisedApi {
  apiKey: number;
  minVersion: number;
  maxVersion: number;
}

export function apiVersionsResponse(
  apis: readonly AdvertisedApi[],
  errorCode = 0,
): ApiVersionsResponse {
  return {
    errorCode,
    apiKeys: apis.map((a) => ({
      apiKey: a.apiKey,
      minVersion: a.minVersion,
      maxVersion: a.maxVersion,
    })),
    throttleTimeMs: 0,
    supportedFeatures: [],
    finalizedFeaturesEpoch: -1,
    finalizedFeatures: [],
    zkMigrationReady: false,
  };
}

export function makeApiVersionsHandler(
  apis: () => readonly AdvertisedApi[],
): Handler<ApiVersionsRequest, ApiVersionsResponse> {
  return {
    apiKey: 18,
    name: 'ApiVersions',
    minVersion: 0,
    maxVersion: 3,
    handle() {
      return apiVersionsResponse(apis());
    },
  };
}
