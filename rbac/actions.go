package rbac

import (
	"strings"
)

// Operation is one API operation Ferry serves, with the ARM action that
// authorizes it on both surfaces. The legacy surface authorizes its requests
// by the same action, under the legacy roles (see LegacyRolePermission).
type Operation struct {
	// ID is the swagger operationId ("Catalogs_Get"). Operations of the IoT
	// Hub and DPS service (data-plane) APIs are prefixed "IotHub." and
	// "Dps." because their operationIds clash with Azure Sphere's.
	ID string
	// Action is the ARM action string the caller needs.
	Action string
	// DataAction marks actions that roles grant through DataActions.
	DataAction bool
	// Method and Path are the integrated surface's request ("" for
	// operations only the legacy surface has). Path is relative to the host.
	Method string
	Path   string
	// Legacy lists the equivalent legacy (PAPI) requests, if any.
	Legacy []string
}

// Path prefixes of the operation table.
const (
	pRG      = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
	pSphere  = pRG + "/providers/Microsoft.AzureSphere"
	pCatalog = pSphere + "/catalogs/{catalogName}"
	pProduct = pCatalog + "/products/{productName}"
	pGroup   = pProduct + "/deviceGroups/{deviceGroupName}"
	pHub     = pRG + "/providers/Microsoft.Devices/IotHubs/{resourceName}"
	pDps     = pRG + "/providers/Microsoft.Devices/provisioningServices/{provisioningServiceName}"
	pMig     = pRG + "/providers/Ferry.Migration/migrations/{migrationName}"
	pTenant  = "/v2/tenants/{tenantId}"
	sphere   = "Microsoft.AzureSphere/"
	authz    = "Microsoft.Authorization/"
	devices  = "Microsoft.Devices/"
	ferryMig = "Ferry.Migration/"
)

// Actions of Ferry's own provider (Ferry.Migration). Integrate and the
// legacy access switches are portal-only in Azure; Ferry gives them actions
// so that RBAC and audit cover them like any other call.
const (
	ActionIntegrate          = ferryMig + "catalogs/integrate/action"
	ActionPauseLegacyAccess  = ferryMig + "catalogs/pauseLegacyAccess/action"
	ActionEnableLegacyAccess = ferryMig + "catalogs/enableLegacyAccess/action"
	ActionBlockLegacyAccess  = ferryMig + "catalogs/blockLegacyAccess/action"
)

func op(id, action, method, path string, legacy ...string) Operation {
	return Operation{ID: id, Action: action, Method: method, Path: path, Legacy: legacy}
}

func dataOp(id, action, method, path string) Operation {
	return Operation{ID: id, Action: action, DataAction: true, Method: method, Path: path}
}

// operations is the table. Microsoft.AzureSphere rows follow
// sphere-surfaces.md §1.3 (paths) and §4.2 (actions; the actions that page
// marks as derived follow ARM naming); legacy requests follow §2.2.
var operations = []Operation{
	// Microsoft.AzureSphere.
	op("Operations_List", sphere+"operations/read", "GET", "/providers/Microsoft.AzureSphere/operations"),
	op("OperationStatuses_Get", sphere+"locations/operationStatuses/read", "GET", "/providers/Microsoft.AzureSphere/locations/{location}/operationStatuses/{operationId}",
		"GET "+pTenant+"/operations/{operationId}"),
	op("Catalogs_ListBySubscription", sphere+"catalogs/read", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.AzureSphere/catalogs",
		"GET /v2/tenants"),
	op("Catalogs_ListByResourceGroup", sphere+"catalogs/read", "GET", pSphere+"/catalogs"),
	op("Catalogs_Get", sphere+"catalogs/read", "GET", pCatalog,
		"GET "+pTenant),
	op("Catalogs_CreateOrUpdate", sphere+"catalogs/write", "PUT", pCatalog,
		"POST /v2/tenants/create"),
	op("Catalogs_Update", sphere+"catalogs/write", "PATCH", pCatalog,
		"PATCH "+pTenant),
	op("Catalogs_Delete", sphere+"catalogs/delete", "DELETE", pCatalog),
	op("Catalogs_CountDevices", sphere+"catalogs/countDevices/action", "POST", pCatalog+"/countDevices"),
	op("Catalogs_ListDeployments", sphere+"catalogs/listDeployments/action", "POST", pCatalog+"/listDeployments"),
	op("Catalogs_ListDeviceGroups", sphere+"catalogs/listDeviceGroups/action", "POST", pCatalog+"/listDeviceGroups",
		"GET "+pTenant+"/devicegroups"),
	op("Catalogs_ListDeviceInsights", sphere+"catalogs/listDeviceInsights/action", "POST", pCatalog+"/listDeviceInsights",
		"GET "+pTenant+"/getDeviceInsights"),
	op("Catalogs_ListDevices", sphere+"catalogs/listDevices/action", "POST", pCatalog+"/listDevices",
		"GET "+pTenant+"/devices"),
	op("Catalogs_UploadImage", sphere+"catalogs/uploadImage/action", "POST", pCatalog+"/uploadImage",
		"POST "+pTenant+"/images"),
	op("Certificates_ListByCatalog", sphere+"catalogs/certificates/read", "GET", pCatalog+"/certificates",
		"GET "+pTenant+"/certificates", "GET "+pTenant+"/certs"),
	op("Certificates_Get", sphere+"catalogs/certificates/read", "GET", pCatalog+"/certificates/{serialNumber}",
		"GET "+pTenant+"/cert"),
	op("Certificates_RetrieveCertChain", sphere+"catalogs/certificates/retrieveCertChain/action", "POST", pCatalog+"/certificates/{serialNumber}/retrieveCertChain",
		"GET "+pTenant+"/certchain", "GET "+pTenant+"/certchains"),
	op("Certificates_RetrieveProofOfPossessionNonce", sphere+"catalogs/certificates/retrieveProofOfPossessionNonce/action", "POST", pCatalog+"/certificates/{serialNumber}/retrieveProofOfPossessionNonce"),
	op("Images_ListByCatalog", sphere+"catalogs/images/read", "GET", pCatalog+"/images",
		"GET "+pTenant+"/images"),
	op("Images_Get", sphere+"catalogs/images/read", "GET", pCatalog+"/images/{imageName}",
		"GET "+pTenant+"/images/{imageId}/metadata"),
	op("Images_CreateOrUpdate", sphere+"catalogs/images/write", "PUT", pCatalog+"/images/{imageName}"),
	op("Images_Delete", sphere+"catalogs/images/delete", "DELETE", pCatalog+"/images/{imageName}"),
	op("Products_ListByCatalog", sphere+"catalogs/products/read", "GET", pCatalog+"/products",
		"GET "+pTenant+"/products"),
	op("Products_Get", sphere+"catalogs/products/read", "GET", pProduct,
		"GET "+pTenant+"/products/{productId}"),
	op("Products_CreateOrUpdate", sphere+"catalogs/products/write", "PUT", pProduct,
		"POST "+pTenant+"/products"),
	op("Products_Update", sphere+"catalogs/products/write", "PATCH", pProduct),
	op("Products_Delete", sphere+"catalogs/products/delete", "DELETE", pProduct,
		"DELETE "+pTenant+"/products/{productId}"),
	op("Products_CountDevices", sphere+"catalogs/products/countDevices/action", "POST", pProduct+"/countDevices"),
	op("Products_GenerateDefaultDeviceGroups", sphere+"catalogs/products/generateDefaultDeviceGroups/action", "POST", pProduct+"/generateDefaultDeviceGroups",
		"POST "+pTenant+"/products/{productId}/devicegroups"),
	op("DeviceGroups_ListByProduct", sphere+"catalogs/products/deviceGroups/read", "GET", pProduct+"/deviceGroups"),
	op("DeviceGroups_Get", sphere+"catalogs/products/deviceGroups/read", "GET", pGroup,
		"GET "+pTenant+"/devicegroups/{deviceGroupId}"),
	op("DeviceGroups_CreateOrUpdate", sphere+"catalogs/products/deviceGroups/write", "PUT", pGroup,
		"POST "+pTenant+"/devicegroups"),
	op("DeviceGroups_Update", sphere+"catalogs/products/deviceGroups/write", "PATCH", pGroup),
	op("DeviceGroups_Delete", sphere+"catalogs/products/deviceGroups/delete", "DELETE", pGroup,
		"DELETE "+pTenant+"/devicegroups/{deviceGroupId}"),
	op("DeviceGroups_ClaimDevices", sphere+"catalogs/products/deviceGroups/claimDevices/action", "POST", pGroup+"/claimDevices",
		"PUT "+pTenant+"/devices"),
	op("DeviceGroups_CountDevices", sphere+"catalogs/products/deviceGroups/countDevices/action", "POST", pGroup+"/countDevices"),
	op("Deployments_ListByDeviceGroup", sphere+"catalogs/products/deviceGroups/deployments/read", "GET", pGroup+"/deployments",
		"GET "+pTenant+"/devicegroups/{deviceGroupId}/deployments"),
	op("Deployments_Get", sphere+"catalogs/products/deviceGroups/deployments/read", "GET", pGroup+"/deployments/{deploymentName}"),
	op("Deployments_CreateOrUpdate", sphere+"catalogs/products/deviceGroups/deployments/write", "PUT", pGroup+"/deployments/{deploymentName}",
		"POST "+pTenant+"/devicegroups/{deviceGroupId}/deployments"),
	op("Deployments_Delete", sphere+"catalogs/products/deviceGroups/deployments/delete", "DELETE", pGroup+"/deployments/{deploymentName}"),
	op("Devices_ListByDeviceGroup", sphere+"catalogs/products/deviceGroups/devices/read", "GET", pGroup+"/devices"),
	op("Devices_Get", sphere+"catalogs/products/deviceGroups/devices/read", "GET", pGroup+"/devices/{deviceName}",
		"GET "+pTenant+"/devices/{deviceId}"),
	op("Devices_CreateOrUpdate", sphere+"catalogs/products/deviceGroups/devices/write", "PUT", pGroup+"/devices/{deviceName}",
		"PUT "+pTenant+"/devices/{deviceId}/claim"),
	op("Devices_Update", sphere+"catalogs/products/deviceGroups/devices/write", "PATCH", pGroup+"/devices/{deviceName}",
		"PUT "+pTenant+"/devices/{deviceId}/devicegroup"),
	op("Devices_Delete", sphere+"catalogs/products/deviceGroups/devices/delete", "DELETE", pGroup+"/devices/{deviceName}"),
	op("Devices_GenerateCapabilityImage", sphere+"catalogs/products/deviceGroups/devices/generateCapabilityImage/action", "POST", pGroup+"/devices/{deviceName}/generateCapabilityImage",
		"POST "+pTenant+"/deviceCapabilityImage"),

	// Microsoft.Authorization. The legacy access-control calls manage the
	// tenant-wide legacy roles; they need the same actions at the tenant.
	op("RoleAssignments_ListForScope", authz+"roleAssignments/read", "GET", "/{scope}/providers/Microsoft.Authorization/roleAssignments",
		"GET "+pTenant+"/users", "GET "+pTenant+"/users/{username}/role"),
	op("RoleAssignments_Get", authz+"roleAssignments/read", "GET", "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}"),
	op("RoleAssignments_Create", authz+"roleAssignments/write", "PUT", "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
		"POST "+pTenant+"/users/{userId}/role/{roleName}/assign"),
	op("RoleAssignments_Delete", authz+"roleAssignments/delete", "DELETE", "/{scope}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}",
		"POST "+pTenant+"/users/{userId}/role/{roleName}/unassign"),
	op("RoleDefinitions_List", authz+"roleDefinitions/read", "GET", "/{scope}/providers/Microsoft.Authorization/roleDefinitions"),
	op("RoleDefinitions_Get", authz+"roleDefinitions/read", "GET", "/{scope}/providers/Microsoft.Authorization/roleDefinitions/{roleDefinitionId}"),
	op("RoleDefinitions_CreateOrUpdate", authz+"roleDefinitions/write", "PUT", "/{scope}/providers/Microsoft.Authorization/roleDefinitions/{roleDefinitionId}"),
	op("RoleDefinitions_Delete", authz+"roleDefinitions/delete", "DELETE", "/{scope}/providers/Microsoft.Authorization/roleDefinitions/{roleDefinitionId}"),
	op("Permissions_ListForResourceGroup", authz+"permissions/read", "GET", pRG+"/providers/Microsoft.Authorization/permissions"),

	// Microsoft.Resources.
	op("Subscriptions_Get", "Microsoft.Resources/subscriptions/read", "GET", "/subscriptions/{subscriptionId}"),
	op("ResourceGroups_List", "Microsoft.Resources/subscriptions/resourceGroups/read", "GET", "/subscriptions/{subscriptionId}/resourcegroups"),
	op("ResourceGroups_Get", "Microsoft.Resources/subscriptions/resourceGroups/read", "GET", pRG),
	op("ResourceGroups_CreateOrUpdate", "Microsoft.Resources/subscriptions/resourceGroups/write", "PUT", pRG),
	op("ResourceGroups_Delete", "Microsoft.Resources/subscriptions/resourceGroups/delete", "DELETE", pRG),

	// Microsoft.Devices/IotHubs (resource provider).
	op("IotHubResource_ListBySubscription", devices+"IotHubs/Read", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Devices/IotHubs"),
	op("IotHubResource_ListByResourceGroup", devices+"IotHubs/Read", "GET", pRG+"/providers/Microsoft.Devices/IotHubs"),
	op("IotHubResource_Get", devices+"IotHubs/Read", "GET", pHub),
	op("IotHubResource_CreateOrUpdate", devices+"IotHubs/Write", "PUT", pHub),
	op("IotHubResource_Update", devices+"IotHubs/Write", "PATCH", pHub),
	op("IotHubResource_Delete", devices+"IotHubs/Delete", "DELETE", pHub),
	op("IotHubResource_ListKeys", devices+"IotHubs/listkeys/Action", "POST", pHub+"/listkeys"),
	op("IotHubResource_GetKeysForKeyName", devices+"IotHubs/IotHubKeys/listkeys/Action", "POST", pHub+"/IotHubKeys/{keyName}/listkeys"),
	op("IotHubResource_GetStats", devices+"IotHubs/IotHubStats/Read", "GET", pHub+"/IotHubStats"),

	// IoT Hub service API (data plane), on the hub's host.
	dataOp("IotHub.Devices_GetIdentity", devices+"IotHubs/devices/read", "GET", "/devices/{id}"),
	dataOp("IotHub.Devices_CreateOrUpdateIdentity", devices+"IotHubs/devices/write", "PUT", "/devices/{id}"),
	dataOp("IotHub.Devices_DeleteIdentity", devices+"IotHubs/devices/delete", "DELETE", "/devices/{id}"),
	dataOp("IotHub.Devices_GetTwin", devices+"IotHubs/twins/read", "GET", "/twins/{id}"),
	dataOp("IotHub.Devices_UpdateTwin", devices+"IotHubs/twins/write", "PATCH", "/twins/{id}"),
	dataOp("IotHub.Devices_ReplaceTwin", devices+"IotHubs/twins/write", "PUT", "/twins/{id}"),
	dataOp("IotHub.Query_GetTwins", devices+"IotHubs/twins/read", "POST", "/devices/query"),
	dataOp("IotHub.Devices_InvokeMethod", devices+"IotHubs/directMethods/invoke/action", "POST", "/twins/{id}/methods"),
	dataOp("IotHub.CloudToDeviceMessages_Send", devices+"IotHubs/cloudToDeviceMessages/send/action", "POST", "/devices/{id}/messages/deviceBound"),
	dataOp("IotHub.CloudToDeviceMessages_PurgeQueue", devices+"IotHubs/cloudToDeviceMessages/queue/purge/action", "DELETE", "/devices/{id}/commands"),
	dataOp("IotHub.Jobs_GetScheduledJob", devices+"IotHubs/jobs/read", "GET", "/jobs/v2/{id}"),
	dataOp("IotHub.Jobs_CreateScheduledJob", devices+"IotHubs/jobs/write", "PUT", "/jobs/v2/{id}"),
	dataOp("IotHub.Jobs_CancelScheduledJob", devices+"IotHubs/jobs/delete", "POST", "/jobs/v2/{id}/cancel"),
	dataOp("IotHub.Statistics_GetDeviceStatistics", devices+"IotHubs/statistics/read", "GET", "/statistics/devices"),
	dataOp("IotHub.Statistics_GetServiceStatistics", devices+"IotHubs/statistics/read", "GET", "/statistics/service"),

	// Microsoft.Devices/provisioningServices (resource provider).
	op("IotDpsResource_ListBySubscription", devices+"provisioningServices/Read", "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Devices/provisioningServices"),
	op("IotDpsResource_ListByResourceGroup", devices+"provisioningServices/Read", "GET", pRG+"/providers/Microsoft.Devices/provisioningServices"),
	op("IotDpsResource_Get", devices+"provisioningServices/Read", "GET", pDps),
	op("IotDpsResource_CreateOrUpdate", devices+"provisioningServices/Write", "PUT", pDps),
	op("IotDpsResource_Update", devices+"provisioningServices/Write", "PATCH", pDps),
	op("IotDpsResource_Delete", devices+"provisioningServices/Delete", "DELETE", pDps),
	op("IotDpsResource_ListKeys", devices+"provisioningServices/listkeys/Action", "POST", pDps+"/listkeys"),
	op("IotDpsResource_ListKeysForKeyName", devices+"provisioningServices/keys/listkeys/Action", "POST", pDps+"/keys/{keyName}/listkeys"),

	// DPS service API (data plane), on the service's host.
	dataOp("Dps.IndividualEnrollment_Get", devices+"provisioningServices/enrollments/read", "GET", "/enrollments/{id}"),
	dataOp("Dps.IndividualEnrollment_CreateOrUpdate", devices+"provisioningServices/enrollments/write", "PUT", "/enrollments/{id}"),
	dataOp("Dps.IndividualEnrollment_Delete", devices+"provisioningServices/enrollments/delete", "DELETE", "/enrollments/{id}"),
	dataOp("Dps.IndividualEnrollment_Query", devices+"provisioningServices/enrollments/read", "POST", "/enrollments/query"),
	dataOp("Dps.EnrollmentGroup_Get", devices+"provisioningServices/enrollmentGroups/read", "GET", "/enrollmentGroups/{id}"),
	dataOp("Dps.EnrollmentGroup_CreateOrUpdate", devices+"provisioningServices/enrollmentGroups/write", "PUT", "/enrollmentGroups/{id}"),
	dataOp("Dps.EnrollmentGroup_Delete", devices+"provisioningServices/enrollmentGroups/delete", "DELETE", "/enrollmentGroups/{id}"),
	dataOp("Dps.EnrollmentGroup_Query", devices+"provisioningServices/enrollmentGroups/read", "POST", "/enrollmentGroups/query"),
	dataOp("Dps.DeviceRegistrationState_Get", devices+"provisioningServices/registrationStates/read", "GET", "/registrations/{id}"),
	dataOp("Dps.DeviceRegistrationState_Delete", devices+"provisioningServices/registrationStates/delete", "DELETE", "/registrations/{id}"),

	// Ferry.Migration: device migrations and the legacy-tenant steps.
	op("FerryOperations_List", ferryMig+"operations/read", "GET", "/providers/Ferry.Migration/operations"),
	op("Migrations_ListByResourceGroup", ferryMig+"migrations/read", "GET", pRG+"/providers/Ferry.Migration/migrations"),
	op("Migrations_Get", ferryMig+"migrations/read", "GET", pMig),
	op("Migrations_CreateOrUpdate", ferryMig+"migrations/write", "PUT", pMig),
	op("Migrations_Delete", ferryMig+"migrations/delete", "DELETE", pMig),
	op("Migrations_ListDevices", ferryMig+"migrations/devices/read", "GET", pMig+"/devices"),
	op("Migrations_ListWaves", ferryMig+"migrations/waves/read", "GET", pMig+"/waves"),
	op("Migrations_Preflight", ferryMig+"migrations/preflight/action", "POST", pMig+"/preflight"),
	op("Migrations_Start", ferryMig+"migrations/start/action", "POST", pMig+"/start"),
	op("Migrations_Pause", ferryMig+"migrations/pause/action", "POST", pMig+"/pause"),
	op("Migrations_Resume", ferryMig+"migrations/resume/action", "POST", pMig+"/resume"),
	op("Migrations_Cancel", ferryMig+"migrations/cancel/action", "POST", pMig+"/cancel"),
	op("Migrations_FailBack", ferryMig+"migrations/failBack/action", "POST", pMig+"/failBack"),
	op("Migrations_Report", ferryMig+"migrations/read", "GET", pMig+"/report"),
	op("Catalogs_Integrate", ActionIntegrate, "POST", pRG+"/providers/Ferry.Migration/integrate"),
	op("Catalogs_PauseLegacyAccess", ActionPauseLegacyAccess, "POST", pCatalog+"/providers/Ferry.Migration/pauseLegacyAccess"),
	op("Catalogs_EnableLegacyAccess", ActionEnableLegacyAccess, "POST", pCatalog+"/providers/Ferry.Migration/enableLegacyAccess"),
	op("Catalogs_BlockLegacyAccess", ActionBlockLegacyAccess, "POST", pCatalog+"/providers/Ferry.Migration/blockLegacyAccess",
		"POST "+pTenant+"/blocklegacyauthorization"),
	op("Catalogs_ProposeIntegration", ActionIntegrate, "POST", pRG+"/providers/Ferry.Migration/proposeIntegration"),
	op("Catalogs_RemoveLegacyRoles", authz+"roleAssignments/delete", "POST", pCatalog+"/providers/Ferry.Migration/removeLegacyRoles"),
	op("Catalogs_LegacyUsage", ferryMig+"catalogs/legacyUsage/read", "GET", pCatalog+"/providers/Ferry.Migration/legacyUsage"),
	op("Catalogs_LegacySidestep", ferryMig+"catalogs/legacySidestep/read", "GET", pCatalog+"/providers/Ferry.Migration/legacySidestep"),
	op("AuditLogs_ListByCatalog", ferryMig+"catalogs/auditLogs/read", "GET", pCatalog+"/providers/Ferry.Migration/auditLogs"),
	op("AuditLogs_List", ferryMig+"catalogs/auditLogs/read", "GET", "/providers/Ferry.Migration/auditLogs"),
}

var (
	operationsByID = map[string]*Operation{}
	dataActions    = map[string]struct{}{}
)

func init() {
	for i := range operations {
		o := &operations[i]
		operationsByID[strings.ToLower(o.ID)] = o
		if o.DataAction {
			dataActions[o.Action] = struct{}{}
			dataActions[strings.ToLower(o.Action)] = struct{}{}
		}
	}
}

// Operations returns a copy of the operation table.
func Operations() []Operation {
	out := make([]Operation, len(operations))
	copy(out, operations)
	for i := range out {
		out[i].Legacy = append([]string(nil), out[i].Legacy...)
	}
	return out
}

// OperationByID returns the operation with the given operationId
// (case-insensitive), and whether there is one.
func OperationByID(id string) (Operation, bool) {
	o, ok := operationsByID[strings.ToLower(id)]
	if !ok {
		return Operation{}, false
	}
	c := *o
	c.Legacy = append([]string(nil), o.Legacy...)
	return c, true
}

// Action returns the ARM action of the operation with the given ID, or ""
// for an unknown ID: a shorthand for handlers.
func Action(id string) string {
	if o, ok := operationsByID[strings.ToLower(id)]; ok {
		return o.Action
	}
	return ""
}
